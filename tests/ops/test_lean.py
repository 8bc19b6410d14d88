import pytest
import torch
import torch.nn.functional as F

import starquad.ops.lean as lean
from starquad.bench.memory import saved_activations
from starquad.ops import NormMlp


def _mlp(dim=8, seed=0):
    torch.manual_seed(seed)
    m = NormMlp(dim, ls_init=0.5)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m


def _reference(m, x):
    """Written out from the definition: γ ⊙ fc2(GELU(fc1(LN(x)))) over channels."""
    xl = x.permute(0, 2, 3, 1)
    z = F.layer_norm(xl, (xl.shape[-1],), m.norm.weight, m.norm.bias, m.norm.eps)
    return (F.linear(F.gelu(F.linear(z, m.fc1.weight, m.fc1.bias)), m.fc2.weight, m.fc2.bias) * m.gamma).permute(
        0, 3, 1, 2
    )


@pytest.mark.parametrize("channels_last", [False, True])
def test_lean_backward_gradcheck_float64_many_chunks(monkeypatch, channels_last):
    monkeypatch.setattr(lean, "_CHUNK_BYTES", 2**10)  # 8 rows per chunk: exercises chunk boundaries
    m = _mlp().double()
    x = torch.randn(2, 8, 5, 7, dtype=torch.double)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    params = (m.norm.weight, m.norm.bias, m.fc1.weight, m.fc1.bias, m.fc2.weight, m.fc2.bias, m.gamma)
    assert torch.autograd.gradcheck(lambda x, *p: lean._LeanMlpFunction.apply(x, *p, m.norm.eps), (x, *params))


def test_lean_plain_and_inference_agree_with_the_definition(monkeypatch):
    monkeypatch.setattr(lean, "_CHUNK_BYTES", 2**10)
    m = _mlp()
    x0 = torch.randn(2, 8, 6, 6)
    ref = _reference(m, x0)
    with torch.no_grad():
        torch.testing.assert_close(m(x0), ref)
    grads = []
    for is_lean in (True, False):
        m.lean = is_lean
        m.zero_grad()
        x = x0.clone().requires_grad_()
        y = m(x)
        torch.testing.assert_close(y, ref)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        grads.append([x.grad] + [p.grad for p in m.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_lean_saves_x_h_and_the_norm_statistics_only():
    m = _mlp(16)
    x = torch.randn(2, 16, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    pixels = 2 * 6 * 6
    stats, _ = saved_activations(lambda: m(x), exclude=m.parameters())
    assert stats.bytes == 4 * pixels * (16 + 4 * 16 + 2)  # x, h = fc1(·) (4C), mean and rstd
    m.lean = False
    plain, _ = saved_activations(lambda: m(x), exclude=m.parameters())
    assert plain.bytes == 4 * pixels * (11 * 16 + 2)  # + LN(x), GELU(h) (4C), fc2(·)


def test_wrong_channel_count_is_named():
    with pytest.raises(ValueError, match=r"NormMlp\(8\) expects \(N, 8, H, W\), got \(1, 3, 4, 4\)"):
        NormMlp(8)(torch.randn(1, 3, 4, 4))
