import torch

from starquad.bench.memory import peak_rss, saved_activations


def test_counts_each_saved_storage_once_and_skips_parameters():
    a = torch.randn(100, requires_grad=True)
    stats, out = saved_activations(lambda: (a[:50] * a[50:]).sum())  # both views of one storage
    assert stats.bytes == 400 and stats.storages == 1 and stats.tensors == 2
    out.backward()
    torch.testing.assert_close(a.grad, torch.cat([a.detach()[50:], a.detach()[:50]]))
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8, requires_grad=True)
    stats, _ = saved_activations(lambda: lin(x), exclude=lin.parameters())
    assert stats.bytes == x.numel() * 4  # the weight is saved too, but it is a parameter


def test_saves_nothing_without_autograd():
    with torch.no_grad():
        stats, _ = saved_activations(lambda: torch.randn(10, requires_grad=True) * 2)
    assert stats.bytes == 0


def test_peak_rss_sees_a_large_allocation():
    rise = peak_rss(lambda: torch.ones(64 * 2**20 // 4))  # 64 MiB, touched
    assert rise is None or rise >= 48 * 2**20
