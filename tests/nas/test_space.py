"""Search spaces as data: candidates, checked architectures, models whose layers are what the op list says."""

import json
import random

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models._efficientnet_blocks import InvertedResidual

from starquad.errors import ConfigError
from starquad.models.blocks import MixerBlock
from starquad.nas import SPACES, build, get_space, layer_ops, load_arch, random_arch, save_arch
from starquad.ops import DepthwiseConv2d, QuadraticConv2d, StarConv2d


def test_the_three_spaces_have_the_issue_candidates():
    names = {s: [c.name for c in space.candidates] for s, space in SPACES.items()}
    assert names["quadranet"] == ["quadra_k3_e2", "quadra_k3_e4", "quadra_k5_e2", "quadra_k5_e4", "quadra_k7_e2",
                                  "quadra_k7_e4", "skip"]  # fmt: skip
    assert names["mbconv"] == ["mbconv_k3_e3", "mbconv_k3_e6", "mbconv_k5_e3", "mbconv_k5_e6", "mbconv_k7_e3",
                               "mbconv_k7_e6", "skip"]  # fmt: skip
    assert len(names["interaction"]) == 3 * 3 * 2 + 1 and {"conv_k3_e2", "star_k5_e4", "quadra_k7_e2"} <= set(
        names["interaction"])
    assert SPACES["quadranet"].size == 7**10


def _expected_module(candidate, module) -> bool:
    if candidate.kind == "skip":
        return isinstance(module, torch.nn.Identity)
    if candidate.kind == "mbconv":
        return (isinstance(module, InvertedResidual) and module.conv_dw.kernel_size == (candidate.kernel,) * 2
                and module.conv_pw.out_channels == int(candidate.expansion * module.conv_pw.in_channels))  # fmt: skip
    mixer_type = {"quadra": QuadraticConv2d, "star": StarConv2d, "conv": DepthwiseConv2d}[candidate.kind]
    kernel = module.mixer.kernel_size if candidate.kind != "star" else module.mixer.conv.kernel_size
    hidden = int(candidate.expansion * module.mlp.fc1.in_features)
    return (isinstance(module, MixerBlock) and type(module.mixer) is mixer_type
            and tuple(kernel) == (candidate.kernel,) * 2 and module.mlp.fc1.out_features == hidden)  # fmt: skip


@pytest.mark.parametrize("space_name", list(SPACES))
@pytest.mark.parametrize("seed", range(4))
def test_random_architectures_build_and_match_their_op_list(space_name, seed):
    space = SPACES[space_name]
    arch = random_arch(space, random.Random(seed))
    model = build(space, arch, num_classes=10, in_chans=1).eval()
    blocks = [b for stage in model.stages for b in stage.blocks]
    ops = layer_ops(space, arch, 28)
    seen = []
    handles = [b.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape[1:]))) for b in blocks]
    with torch.no_grad():
        out = model(torch.randn(2, 1, 28, 28))
    for h in handles:
        h.remove()
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert len(blocks) == len(ops) == space.num_layers
    assert seen == [op.input_shape for op in ops]  # every layer sees the shape the op list (table key) says
    for block, op, choice in zip(blocks, ops, arch, strict=True):
        candidate = space.candidates[choice]
        assert op.op == candidate.name and _expected_module(candidate, block), (op, block)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_a_built_model_has_the_timm_surface():
    space = get_space("interaction")
    arch = [i % len(space.candidates) for i in range(0, 3 * space.num_layers, 3)]  # conv, star, quadra, skip mixed
    model = build(space, arch, num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    assert model.pretrained_cfg["nas_space"] == "interaction" and model.pretrained_cfg["nas_arch"] == arch
    feats = build(space, arch, features_only=True).eval()(x)
    assert [f.shape[1] for f in feats] == list(space.widths)
    with torch.no_grad(), timm.layers.set_layer_config(scriptable=True):
        scripted = torch.jit.script(build(space, arch, num_classes=5).eval())
    model.load_state_dict(scripted.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-4, atol=1e-5)
        model.reset_classifier(0, "")
        assert model(x).ndim == 4


def test_star_conv_is_act_of_branch_a_times_branch_b():
    torch.manual_seed(0)
    op = StarConv2d(6, kernel_size=5)
    x = torch.randn(2, 6, 9, 9)
    w, b = op.conv.weight, op.conv.bias
    a = F.conv2d(x, w[0::2], b[0::2], padding=2, groups=6)
    bb = F.conv2d(x, w[1::2], b[1::2], padding=2, groups=6)
    torch.testing.assert_close(op(x), F.relu6(a) * bb)
    with pytest.raises(ConfigError, match="odd kernel"):
        StarConv2d(6, kernel_size=4)


@pytest.mark.parametrize(
    "arch, message",
    [
        ([0] * 9, "has 10 searchable layers [2, 2, 4, 2], the architecture gives 9"),
        ([0] * 9 + [7], "layer 9 of the architecture: 7 is not a candidate index 0..6"),
        ([0] * 9 + [-1], "layer 9 of the architecture: -1 is not a candidate index"),
        ([True] + [0] * 9, "layer 0 of the architecture: True is not a candidate index"),
        ("0123456789", "is a list of 10 candidate indices, got str"),
    ],
)
def test_bad_architectures_are_named(arch, message):
    with pytest.raises(ConfigError) as info:
        build(SPACES["quadranet"], arch)
    assert message in str(info.value)


def test_arch_files_round_trip_and_refuse_damage(tmp_path):
    space = get_space("mbconv", layers=(1, 1, 2, 1))
    arch = random_arch(space, random.Random(3))
    path = save_arch(tmp_path / "arch.json", space, arch)
    assert load_arch(path) == (space, arch)
    record = json.loads(path.read_text())
    record["ops"][0] = "quadra_k3_e2"
    (tmp_path / "edited.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="op names do not match"):
        load_arch(tmp_path / "edited.json")
    (tmp_path / "cut.json").write_text(path.read_text()[:20])
    with pytest.raises(ConfigError, match=r"cut\.json: not a starquad architecture file"):
        load_arch(tmp_path / "cut.json")
    with pytest.raises(ConfigError, match="unknown search space 'proxyless'"):
        get_space("proxyless")
    with pytest.raises(ConfigError, match="too small"):
        layer_ops(space, arch, 8)


@pytest.mark.parametrize("space_name", list(SPACES))
def test_every_space_exports_to_onnx(space_name, tmp_path):
    """What a latency table times in ONNX Runtime: every op kind exports and matches PyTorch (export_onnx checks)."""
    from starquad.deploy import export_onnx

    space = get_space(space_name, layers=(1, 1, 1, 1))
    arch = [i % (len(space.candidates) - 1) for i in range(0, 7 * space.num_layers, 7)]  # varied, no skips
    result = export_onnx(build(space, arch, num_classes=10, in_chans=1), tmp_path / "m.onnx", (1, 28, 28))
    assert result.max_abs_diff <= 1e-4 and (tmp_path / "m.onnx").stat().st_size == result.size_bytes
