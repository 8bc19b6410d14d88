"""The fast depthwise-conv backward: the same gradients as PyTorch's over the shapes our networks use."""

import itertools

import pytest
import torch
import torch.nn as nn

from starquad.ops import DepthwiseConv2d, QuadraticConv2d, dwconv

_aten = torch.ops.aten
needs_ext = pytest.mark.skipif(dwconv.extension() is None, reason="the extension could not be built here")


def _reference(grads, x, weights, s, p):
    gx, gws = 0, []
    for g, w in zip(grads, weights, strict=True):
        a, b, _ = _aten.convolution_backward(g, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], x.shape[1],
                                             (True, True, False))  # fmt: skip
        gx, gws = gx + a, [*gws, b]
    return gx, gws


def _close(a, b, dtype):
    tol = 2e-6 if dtype == torch.float32 else 1e-13  # relative to the largest entry: float rounding of the sums
    assert a.shape == b.shape
    assert (a - b).abs().max() <= tol * b.abs().max() * max(1.0, b.numel() ** 0.25)


GRID = [  # (batch, channels, map, kernel, stride, branches)
    *[(n, c, h, k, s, 1) for n, c, h, k, s in itertools.product((1, 3), (8, 70), (2, 7, 13), (3, 5, 7, 9), (1, 2))],
    (2, 130, 4, 7, 1, 3), (4, 64, 14, 7, 1, 3), (2, 24, 56, 3, 1, 2), (16, 32, 4, 7, 1, 3), (3, 16, 9, 5, 2, 3),
    (2, 20, 13, 11, 1, 1), (2, 20, 13, 11, 2, 2),  # kernel 11: the generic loop
]  # fmt: skip


@needs_ext
@pytest.mark.parametrize("n, c, h, k, s, branches", GRID)
def test_gradients_equal_pytorch(n, c, h, k, s, branches):
    torch.manual_seed(n * 1000 + c + h + k)
    p = k // 2
    x = torch.randn(n, c, h, h).contiguous(memory_format=torch.channels_last)
    weights = [torch.randn(c, 1, k, k) for _ in range(branches)]
    oh = (h + 2 * p - k) // s + 1
    grads = [torch.randn(n, c, oh, oh).contiguous(memory_format=torch.channels_last) for _ in range(branches)]
    gx, gws = dwconv.depthwise_backward(grads, x, weights, (s, s), (p, p))
    rx, rws = _reference(grads, x, weights, s, p)
    _close(gx, rx, torch.float32)
    for a, b in zip(gws, rws, strict=True):
        _close(a, b, torch.float32)


@needs_ext
def test_gradcheck_in_float64():
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(5, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    fn = dwconv._DepthwiseConvFunction.apply
    assert torch.autograd.gradcheck(lambda x, w, b: fn(x, w, b, (2, 2), (1, 1)), (x, w, b))


def test_module_is_an_nn_conv2d_with_the_same_numbers():
    torch.manual_seed(0)
    fast = DepthwiseConv2d(12, 7)
    plain = nn.Conv2d(12, 12, 7, padding=3, groups=12)
    plain.load_state_dict(fast.state_dict())  # the same keys and shapes
    x = torch.randn(3, 12, 10, 10).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fast(xa), plain(xb)
    torch.testing.assert_close(ya, yb)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    for a, b in ((xa.grad, xb.grad), (fast.weight.grad, plain.weight.grad), (fast.bias.grad, plain.bias.grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    scripted = torch.jit.script(fast)
    torch.testing.assert_close(scripted(x), plain(x))


@needs_ext
def test_quadratic_conv_backward_uses_the_extension(monkeypatch):
    """QuadraticConv2d's backward takes its weight gradient from the extension (one call for the three branches)
    and gives the gradients of its plain-autograd form."""
    torch.manual_seed(1)
    layer = QuadraticConv2d(16, 16, 5, groups=16)
    reference = QuadraticConv2d(16, 16, 5, groups=16, memory_efficient=False)
    reference.load_state_dict(layer.state_dict())
    calls, real = [], dwconv.extension()

    class Spy:
        def weight_grads(self, x, grads, *args):
            calls.append(len(grads))
            return real.weight_grads(x, grads, *args)

    monkeypatch.setattr(dwconv, "extension", Spy)
    x = torch.randn(2, 16, 9, 9).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    layer(xa).square().sum().backward()
    reference(xb).square().sum().backward()
    assert calls == [3]
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-5)


def test_without_the_extension_pytorch_does_the_work(monkeypatch):
    monkeypatch.setattr(dwconv, "extension", lambda: None)
    x = torch.randn(2, 6, 7, 7).contiguous(memory_format=torch.channels_last)
    w, g = torch.randn(6, 1, 3, 3), torch.randn(2, 6, 7, 7).contiguous(memory_format=torch.channels_last)
    gx, (gw,) = dwconv.depthwise_backward([g], x, [w], (1, 1), (1, 1))
    rx, (rw,) = _reference([g], x, [w], 1, 1)
    assert torch.equal(gx, rx) and torch.equal(gw, rw)


def test_a_failed_build_is_one_line_and_no_error(monkeypatch, caplog):
    import torch.utils.cpp_extension as cpp

    def broken(**kwargs):
        raise RuntimeError("Error building extension 'starquad_dwconv'\nlong compiler output")

    monkeypatch.setattr(cpp, "load", broken)
    dwconv.extension.cache_clear()
    try:
        assert dwconv.extension() is None
    finally:
        dwconv.extension.cache_clear()
    (record,) = [r for r in caplog.records if "depthwise" in r.getMessage()]
    assert "using PyTorch's kernel" in record.getMessage() and "\n" not in record.getMessage()


def test_every_checkout_builds_from_the_one_copy_in_the_cache(monkeypatch, tmp_path):
    """ninja keys a build on the source's path: the build reads a copy in the cache folder, so a second checkout
    (another path, the same source) reuses the build instead of compiling again."""
    import torch.utils.cpp_extension as cpp

    seen = {}

    def record(**kwargs):
        seen.update(kwargs)
        return "built"

    monkeypatch.setenv("STARQUAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpp, "load", record)
    other = tmp_path / "checkout" / "dwconv.cpp"
    other.parent.mkdir()
    other.write_bytes(dwconv._SOURCE.read_bytes())
    sources = []
    for path in (dwconv._SOURCE, other):
        monkeypatch.setattr(dwconv, "_SOURCE", path)
        dwconv.extension.cache_clear()
        try:
            assert dwconv.extension() == "built"
        finally:
            dwconv.extension.cache_clear()
        sources.append(seen["sources"])
    (copy,) = sources[0]
    assert sources[1] == sources[0] and copy.startswith(str(tmp_path / "cache"))
    assert open(copy, "rb").read() == other.read_bytes()
