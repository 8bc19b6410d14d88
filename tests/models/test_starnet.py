import pytest
import timm
import torch
from safetensors.torch import save_file

import starquad
from starquad.errors import ConfigError
from starquad.models import CheckpointError, load_checkpoint
from starquad.models.starnet import StarNet

VARIANTS = ["starnet_s050", "starnet_s100", "starnet_s150", "starnet_s1", "starnet_s2", "starnet_s3", "starnet_s4"]


def _randomise_bn(model):
    """Give every BatchNorm non-trivial running statistics and affine parameters (eval is then not identity)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_timm_state_dict_loads_and_gives_the_same_outputs(variant, tmp_path):
    ref = _randomise_bn(timm.create_model(variant)).eval()
    path = tmp_path / "authors.pth.tar"
    torch.save({"state_dict": ref.state_dict(), "epoch": 300}, path)  # the authors' release layout
    ours = starquad.create_model(variant).eval()
    assert load_checkpoint(ours, path) == ([], [])
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    diff = (ours(x) - ref(x)).abs().max().item()
    print(f"{variant}: max |ours - timm| = {diff:.3g}")
    assert diff <= 1e-5


@pytest.mark.parametrize("layout", ["bare.pth", "model.pth", "model_ema.pth", "timm.safetensors"])
def test_checkpoint_layouts(layout, tmp_path):
    src = _randomise_bn(starquad.create_model("starnet_s050"))
    sd = src.state_dict()
    path = tmp_path / layout
    if layout.endswith(".safetensors"):
        save_file(sd, str(path))
    elif layout == "bare.pth":
        torch.save(sd, path)
    elif layout == "model.pth":
        torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {}}, path)
    else:
        torch.save({"model": {k: torch.zeros_like(v) for k, v in sd.items()}, "model_ema": sd}, path)
    dst = starquad.create_model("starnet_s050")
    load_checkpoint(dst, path, use_ema=layout == "model_ema.pth")
    for k, v in dst.state_dict().items():
        torch.testing.assert_close(v, sd[k], rtol=0, atol=0)


def test_checkpoint_errors(tmp_path):
    model = starquad.create_model("starnet_s050")
    path = tmp_path / "ck.pth"
    torch.save(model.state_dict(), path)
    (tmp_path / "cut.pth").write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"cut\.pth: cannot read checkpoint \(truncated or corrupt\?\)"):
        load_checkpoint(model, tmp_path / "cut.pth")
    with pytest.raises(
        CheckpointError,
        match=r"137 shape mismatch\(es\), e\.g\. stages\.0\.0\.conv\.weight \(16, 32, 3, 3\) vs \(24, 32, 3, 3\)",
    ):
        load_checkpoint(starquad.create_model("starnet_s1"), path)
    sd = model.state_dict()
    sd.pop("head.weight")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"1 missing \(e\.g\. head\.weight\); 1 unexpected \(e\.g\. extra\.weight\)"
    ):
        load_checkpoint(model, path)
    assert load_checkpoint(model, path, strict=False) == (["head.weight"], ["extra.weight"])
    with pytest.raises(CheckpointError, match="no model_ema"):
        load_checkpoint(model, path, use_ema=True)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(model, tmp_path / "nope.pth")


def test_ours_and_timms_are_separate():
    assert type(starquad.create_model("starnet_s1")) is StarNet
    assert type(timm.create_model("starnet_s1")).__module__ == "timm.models.starnet"
    assert type(starquad.create_model("timm:starnet_s1")).__module__ == "timm.models.starnet"


def _outputs(**kwargs):
    """Outputs of starnet_s050 variants that share one set of weights (where shapes allow).

    Kaiming-init convs (``weight_init='authors'``) make the branches large enough next to the residual
    for every ablation to show clearly.
    """
    torch.manual_seed(0)
    base = _randomise_bn(starquad.create_model("starnet_s050", weight_init="authors")).eval()
    model = starquad.create_model("starnet_s050", **kwargs).eval()
    model.load_state_dict(base.state_dict(), strict=False)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return base(x), model(x)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(fusion="sum"),
        dict(fusion=("sum", "sum", "star", "star")),
        dict(act_placement="both"),
        dict(act_placement="after"),
        dict(act_placement="none"),
        dict(act="gelu"),
        dict(act="hardswish"),
    ],
    ids=str,
)
def test_ablations_change_the_computation(kwargs):
    base, ablated = _outputs(**kwargs)
    assert torch.isfinite(ablated).all()
    assert (base - ablated).abs().max() > 1e-3 * base.abs().max()  # float noise is ~1e-7


def test_per_stage_fusion_reaches_the_blocks():
    model = starquad.create_model("starnet_s050", fusion=("sum", "sum", "star", "star"))
    assert [model.stages[i][1].star.fusion for i in range(4)] == ["sum", "sum", "star", "star"]
    with pytest.raises(ConfigError, match="fusion has 2 entries but the model has 4 stages"):
        starquad.create_model("starnet_s050", fusion=("sum", "star"))


def test_block_design_two():
    model = starquad.create_model("starnet_s050", block_design="II").eval()
    block = model.stages[2][1]
    assert block.f2 is None  # design II has no second expanding branch
    x = torch.randn(1, 64, 14, 14)
    with torch.no_grad():
        expected = block.dwconv2(block.g(block.act(block.f1(block.dwconv(x)))) * block.dwconv(x))
        torch.testing.assert_close(block(x), x + expected)
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in starquad.create_model("starnet_s050").parameters()
    )
    with pytest.raises(ConfigError, match="block_design 'II'"):
        starquad.create_model("starnet_s050", block_design="II", act_placement="both")
    with pytest.raises(ConfigError, match="unknown block_design 'III'"):
        starquad.create_model("starnet_s050", block_design="III")


def test_init_choices_and_drop_path():
    timm_init = starquad.create_model("starnet_s1")
    authors = starquad.create_model("starnet_s1", weight_init="authors")
    # trunc-normal(0.02) vs PyTorch's default Kaiming-uniform (fan_in 27: std = 1/sqrt(3·27) ≈ 0.111)
    assert timm_init.stem[0].conv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert authors.stem[0].conv.weight.std().item() == pytest.approx(0.111, rel=0.1)
    model = starquad.create_model("starnet_s1", drop_path_rate=0.1)
    rates = [b.drop_path.drop_prob for s in model.stages for b in list(s)[1:] if hasattr(b.drop_path, "drop_prob")]
    assert len(rates) == 14 and rates[-1] == pytest.approx(0.1) and rates == sorted(rates)


@torch.no_grad()
def test_stem_stride_one_keeps_small_images_at_twice_the_resolution():
    model = starquad.create_model("starnet_s050", stem_stride=1, in_chans=1, num_classes=10, features_only=True)
    feats = model(torch.randn(1, 1, 32, 32))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    assert model.feature_info.reduction() == [2, 4, 8, 16]
