import pytest
import torch
import torch.nn.functional as F

import starquad
from starquad.models.demonet import DemoBlock, DemoNet


@pytest.mark.parametrize(
    "name, params_m", [("demonet_d12_w96", 1.24), ("demonet_d12_w192", 4.46), ("demonet_d12_w288", 9.68)]
)
def test_sizes_match_the_paper(name, params_m):
    n = sum(p.numel() for p in starquad.create_model(name).parameters())
    assert n / 1e6 == pytest.approx(params_m, rel=0.01)


def test_block_computes_the_star_formula():
    torch.manual_seed(0)
    block = DemoBlock(8, "star", "gelu", layer_scale_init=0.5).eval()
    x = torch.randn(2, 5, 5, 8)
    y = block.norm(x)
    y = block.dwconv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    h = block.f(y)
    expected = x + 0.5 * block.g(F.gelu(h[..., :24]) * h[..., 24:])
    torch.testing.assert_close(block(x), expected)


@torch.no_grad()
def test_sum_and_activation_free_variants_differ():
    x = torch.randn(2, 1, 28, 28)
    outs = {}
    for fusion in ("star", "sum"):
        for act in ("gelu", "identity"):
            torch.manual_seed(0)
            m = DemoNet(depth=2, width=32, fusion=fusion, act=act, patch_size=4, in_chans=1, num_classes=10,
                        layer_scale_init=1.0).eval()  # fmt: skip
            outs[fusion, act] = m(x)
            assert outs[fusion, act].shape == (2, 10)
    keys = list(outs)
    for i in range(len(keys)):
        for j in range(i):
            assert not torch.allclose(outs[keys[i]], outs[keys[j]])


def test_demonet_2d_structure():
    m = starquad.create_model("demonet_2d", fusion="sum")
    assert m(torch.randn(7, 2)).shape == (7, 2)
    assert len(m.blocks) == 4 and m.stem.out_features == 100
    assert all(b.dwconv is None and b.gamma is None and b.star.fusion == "sum" for b in m.blocks)
    assert m.blocks[0].f.out_features == 600 and m.blocks[0].g.in_features == 300


@torch.no_grad()
def test_head_pools_then_normalises():
    """SPEC §2: head = mean over tokens → LayerNorm → Linear."""
    model = starquad.create_model("demonet_d12_w96", depth=2, num_classes=4).eval()
    torch.nn.init.normal_(model.norm.weight)  # make the order matter
    x = torch.randn(2, 3, 64, 64)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 96, 4, 4)
    expected = model.head(torch.nn.functional.layer_norm(tokens.mean((2, 3)), (96,), model.norm.weight,
                                                         model.norm.bias, model.norm.eps))  # fmt: skip
    torch.testing.assert_close(model(x), expected)
