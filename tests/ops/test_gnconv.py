import pytest
import torch
import torch.nn.functional as F

from starquad.errors import ConfigError
from starquad.ops import GnConv


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_gnconv_follows_the_recursion(order):
    torch.manual_seed(order)
    dim = 32
    m = GnConv(dim, order)
    dims = [dim // 2**i for i in range(order)][::-1]
    assert m.dims == dims and m.dwconv.in_channels == sum(dims)
    x = torch.randn(2, dim, 9, 9)
    fused = F.conv2d(x, m.proj_in.weight, m.proj_in.bias)
    p0, q = fused[:, : dims[0]], fused[:, dims[0] :]
    dw = F.conv2d(q, m.dwconv.weight, m.dwconv.bias, padding=3, groups=sum(dims)) / 3
    gates, start = [], 0
    for d in dims:
        gates.append(dw[:, start : start + d])
        start += d
    y = p0 * gates[0]
    for i in range(order - 1):
        y = F.conv2d(y, m.pws[i].weight, m.pws[i].bias) * gates[i + 1]
    torch.testing.assert_close(m(x), F.conv2d(y, m.proj_out.weight, m.proj_out.bias))


def test_gnconv_needs_divisible_width():
    with pytest.raises(ConfigError, match="divisible by 8"):
        GnConv(20, order=4)
