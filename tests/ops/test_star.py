import pytest
import torch
import torch.nn.functional as F

from starquad.errors import ConfigError
from starquad.ops import ACT_PLACEMENTS, ACTIVATIONS, StarFusion

X1, X2 = torch.randn(4, 6, generator=torch.Generator().manual_seed(0)), torch.randn(4, 6)


@pytest.mark.parametrize(
    "placement, expected",
    [
        ("one", lambda a, b: F.relu6(a) * b),
        ("both", lambda a, b: F.relu6(a) * F.relu6(b)),
        ("after", lambda a, b: F.relu6(a * b)),
        ("none", lambda a, b: a * b),
    ],
)
def test_placements(placement, expected):
    torch.testing.assert_close(StarFusion("star", "relu6", placement)(X1, X2), expected(X1, X2))


def test_sum_fusion():
    torch.testing.assert_close(StarFusion("sum", "gelu")(X1, X2), F.gelu(X1) + X2)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_activation_types(act):
    torch.testing.assert_close(StarFusion("star", act)(X1, X2), ACTIVATIONS[act]()(X1) * X2)


def test_every_variant_is_distinct():
    outs = [StarFusion(f, "relu6", p)(X1, X2) for f in ("star", "sum") for p in ACT_PLACEMENTS]
    for i in range(len(outs)):
        for j in range(i):
            assert not torch.allclose(outs[i], outs[j])


def test_bad_values():
    with pytest.raises(ConfigError, match="unknown fusion 'prod'; choose one of: star, sum"):
        StarFusion("prod")
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        StarFusion(act="swish")
    with pytest.raises(ConfigError, match="unknown activation placement 'two'"):
        StarFusion(act_placement="two")
