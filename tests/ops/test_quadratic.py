import pytest
import torch
import torch.nn.functional as F

from starquad.bench.memory import saved_activations
from starquad.errors import ConfigError
from starquad.ops import PolynomialConv2d, QuadraticConv2d, QuadraticLinear, merge_branches, split_branches
from starquad.ops.quadratic import _BranchedConv, _RecomputedBranches


def _seeded(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return module


def _apply_me(layer):
    """The memory-efficient function itself, as a function of (x, weight, bias) for gradcheck."""
    return lambda x, w, b: _RecomputedBranches.apply(x, w, b, layer._op, layer._combiner)


@pytest.mark.parametrize(
    "in_chs, out_chs, k, stride, groups",
    [(4, 6, 3, 1, 1), (4, 4, 3, 2, 2), (6, 6, 5, 1, 6), (6, 6, 3, 2, 6), (4, 8, 3, 1, 4)],
)
def test_quadratic_conv_gradcheck_float64(in_chs, out_chs, k, stride, groups):
    layer = _seeded(QuadraticConv2d(in_chs, out_chs, k, stride=stride, groups=groups)).double()
    x = torch.randn(2, in_chs, 7, 6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_apply_me(layer), (x, layer.weight, layer.bias))


def test_quadratic_linear_gradcheck_float64():
    layer = _seeded(QuadraticLinear(5, 3)).double()
    x = torch.randn(2, 4, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_apply_me(layer), (x, layer.weight, layer.bias))


@pytest.mark.parametrize("order", [2, 3, 4])
def test_polynomial_conv_gradcheck_float64(order):
    layer = _seeded(PolynomialConv2d(4, 4, order=order, kernel_size=3, groups=4)).double()
    x = torch.randn(2, 4, 5, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_apply_me(layer), (x, layer.weight, layer.bias))


@pytest.mark.parametrize("groups", [1, 2, 8])
def test_quadratic_conv_is_three_convs(groups):
    """conv_a(x) ⊙ conv_b(x) + conv_c(x) with the per-group interleaved weight layout."""
    layer = _seeded(QuadraticConv2d(8, 8, 5, groups=groups))
    x = torch.randn(2, 8, 9, 9)
    (wa, wb, wc), (ba, bb, bc) = split_branches(layer.weight, 3, groups), split_branches(layer.bias, 3, groups)
    conv = lambda w, b: F.conv2d(x, w, b, padding=2, groups=groups)  # noqa: E731
    torch.testing.assert_close(layer(x), conv(wa, ba) * conv(wb, bb) + conv(wc, bc))
    # the merged weight is one grouped conv with 3× the outputs: group g holds rows [a_g, b_g, c_g]
    y = F.conv2d(x, layer.weight, layer.bias, padding=2, groups=groups).unflatten(1, (groups, 3, -1))
    torch.testing.assert_close(y[:, :, 0].flatten(1, 2), conv(wa, ba))
    assert torch.equal(merge_branches([wa, wb, wc], groups), layer.weight)


def test_one_conv_and_per_branch_execution_agree(monkeypatch):
    """The CPU runs depthwise branches separately; the one-conv path (CUDA's) must give the same values."""
    layer = _seeded(QuadraticConv2d(6, 6, 3, groups=6)).double()  # float64: the two orders of summation agree
    x = torch.randn(2, 6, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    results = []
    for separate in (True, False):
        monkeypatch.setattr(_BranchedConv, "_separate", lambda self, x, weight, s=separate: s)
        layer.zero_grad()
        x.grad = None
        y = layer(x)
        y.square().sum().backward()
        results.append((y.detach(), x.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone()))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "make",
    [
        lambda me: QuadraticConv2d(8, 8, 7, groups=8, memory_efficient=me),
        lambda me: QuadraticLinear(8, 6, memory_efficient=me),
        lambda me: PolynomialConv2d(8, 8, order=3, kernel_size=3, memory_efficient=me),
    ],
)
def test_memory_efficient_matches_plain_autograd(make):
    x0 = torch.randn(2, 8, 10, 10) if not isinstance(make(True), QuadraticLinear) else torch.randn(3, 5, 8)
    outs = []
    for me in (True, False):
        layer = _seeded(make(me))
        x = x0.clone().requires_grad_()
        y = layer(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outs.append((y.detach(), x.grad, layer.weight.grad, layer.bias.grad))
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * float(b.abs().max()))


def test_memory_efficient_saves_only_the_input():
    layer = QuadraticConv2d(16, 16, 7, groups=16)
    x = torch.randn(2, 16, 12, 12, requires_grad=True)
    stats, _ = saved_activations(lambda: layer(x), exclude=layer.parameters())
    assert stats.bytes == x.numel() * 4
    layer.memory_efficient = False
    plain, _ = saved_activations(lambda: layer(x), exclude=layer.parameters())
    assert plain.bytes >= 3 * x.numel() * 4  # the input plus the x_a, x_b that the product keeps


def test_polynomial_recursion():
    layer = _seeded(PolynomialConv2d(4, 4, order=3, kernel_size=3))
    x = torch.randn(1, 4, 6, 6)
    branches = layer.branch_outputs(x)
    y = torch.zeros_like(branches[0])
    for b in branches:
        y = y * b + b
    torch.testing.assert_close(layer(x), y)


def test_bad_configurations_say_what_is_wrong():
    with pytest.raises(ConfigError, match="divisible by groups"):
        QuadraticConv2d(6, 6, groups=4)
    with pytest.raises(ConfigError, match="odd kernel"):
        QuadraticConv2d(4, 4, kernel_size=4)
    with pytest.raises(ConfigError, match="order must be >= 2"):
        PolynomialConv2d(4, 4, order=1)
    with pytest.raises(RuntimeError, match="channels"):
        QuadraticConv2d(4, 4)(torch.randn(1, 3, 8, 8))


def test_recompute_skips_the_branch_backward_does_not_read(monkeypatch):
    """The quadratic combiner's backward reads x_a and x_b only (dL/dx_c = dL/dy), so where the branches run as
    separate convs (depthwise on the CPU) the recompute runs two convs, not three; the gradients stay exact."""
    import starquad.ops.quadratic as quadratic

    layer = _seeded(QuadraticConv2d(8, 8, 3, groups=8))
    reference = QuadraticConv2d(8, 8, 3, groups=8, memory_efficient=False)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    y = layer(x)
    calls, real = [], F.conv2d
    monkeypatch.setattr(quadratic.F, "conv2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    y.square().sum().backward()
    monkeypatch.undo()
    assert len(calls) == 2
    xr = x.detach().clone().requires_grad_()
    reference(xr).square().sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad, rtol=1e-5, atol=1e-6)
