"""One conformance test over every registered starquad image model: timm's model contract.

The properties are those that pytorch-image-models' own ``tests/test_models.py`` checks for each timm
model (forward, backward, default cfgs with unpooled features, ``features_only``, ``forward_intermediates``,
TorchScript, torch.fx forward and backward), written here against our registry, at timm's input sizes
(forward and cfg checks at the cfg's 224², backward/TorchScript/fx at 128², feature extraction at 96²).
Plus the parts of the surface timm's training scripts call (``group_matcher``, ``no_weight_decay``,
gradient checkpointing, ``prune_intermediate_layers``).

Adapted timm baselines (``baseline_of`` in their cfg, e.g. resnet18_small) are timm's models and keep timm's
surface; they are tested in tests/models/test_registry.py."""

import math

import pytest
import timm
import torch
from timm.layers import get_notrace_functions, get_notrace_modules
from timm.models import group_parameters
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

import starquad

IMAGE_MODELS = [
    n
    for n in starquad.list_models()
    if starquad.get_model_cfg(n).get("input_size", (0,))[0] == 3 and not starquad.get_model_cfg(n).get("baseline_of")
]
# Models over ~10 GMACs at 224² take seconds per property on 2 CPU cores: still run, marked slow.
BIG = {"quadranet_s36", "quadranet_b36", "quadranet_s25", "quadranet_b25", "hornet_s", "hornet_b",
       "quadranet_t36", "demonet_d12_w288"}  # fmt: skip
MODELS = [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in IMAGE_MODELS]
FWD_SIZE, BWD_SIZE, FEAT_SIZE = 224, 128, 96  # timm's targets (TARGET_BWD_SIZE, TARGET_JIT_SIZE, TARGET_FFEAT_SIZE)


def _input(size: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def _fx_kwargs() -> dict:
    return {"leaf_modules": list(get_notrace_modules()), "autowrap_functions": list(get_notrace_functions()),
            "param_shapes_constant": True}  # fmt: skip


def _fx_model(model: torch.nn.Module) -> torch.nn.Module:
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=_fx_kwargs())
    return create_feature_extractor(model, train_return_nodes=[train_nodes[-1]], eval_return_nodes=[eval_nodes[-1]],
                                    tracer_kwargs=_fx_kwargs())  # fmt: skip


def _scriptable(name: str) -> torch.nn.Module:
    """The model as timm builds it for TorchScript (``set_scriptable``), in eval mode."""
    with timm.layers.set_layer_config(scriptable=True):
        return starquad.create_model(name).eval()


def test_registry_is_populated():
    assert {"starnet_s1", "starnet_s4", "quadranet_t25", "hornet_t", "demonet_d12_w192"} <= set(IMAGE_MODELS)


def test_timm_lists_our_families_by_module():
    """timm.list_models(module=...) finds the families registered in timm (StarNet stays timm's own)."""
    assert set(timm.list_models(module="quadranet")) == set(starquad.list_models("quadranet_*"))
    assert set(timm.list_models(module="hornet")) == set(starquad.list_models("hornet_*"))
    assert set(timm.list_models(module="demonet")) == set(starquad.list_models("demonet_d*"))
    assert timm.list_models(module="starnet") and all(n.startswith("starnet") for n in timm.list_models("starnet*"))
    assert timm.create_model("quadranet_xxs36", num_classes=3).default_cfg["input_size"] == (3, 224, 224)


@pytest.mark.parametrize("name", MODELS)
@torch.no_grad()
def test_forward(name):
    model = starquad.create_model(name).eval()
    out = model(_input(FWD_SIZE))
    assert out.shape == (1, 1000) and not torch.isnan(out).any()


@pytest.mark.parametrize("name", MODELS)
def test_backward_every_param_gets_a_grad(name):
    model = starquad.create_model(name, num_classes=42).train()
    out = model(_input(BWD_SIZE, batch=2))
    out.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing and out.shape == (2, 42)


@pytest.mark.parametrize("name", MODELS)
@torch.no_grad()
def test_default_cfgs_and_unpooled_features(name):
    model = starquad.create_model(name).eval()
    assert model.num_classes == 1000 and model.num_features > 0 and model.head_hidden_size > 0
    cfg = model.pretrained_cfg
    x = _input(cfg["input_size"][-1])
    pool = tuple(cfg["pool_size"])
    feats = model.forward_features(x)
    assert feats.shape[-2:] == pool and feats.shape[1] == model.num_features
    pre = model.forward_head(feats, pre_logits=True)
    assert pre.shape == (1, model.head_hidden_size)
    model.reset_classifier(0)
    out = model(x)
    assert model.num_classes == 0 and out.shape == pre.shape
    model.reset_classifier(0, "")  # no classifier, no pooling: the 4-D map
    out = model(x)
    assert out.ndim == 4 and out.shape[-2:] == pool and out.shape[1] == model.num_features
    model = starquad.create_model(name, num_classes=0, global_pool="").eval()
    assert model(x).shape[-2:] == pool and model(x).ndim == 4
    state = starquad.create_model(name).state_dict()
    assert cfg["classifier"] + ".weight" in state and cfg["first_conv"] + ".weight" in state


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("feature_cls", [None, "getter"])
@torch.no_grad()
def test_features_only(name, feature_cls):
    extra = {"feature_cls": feature_cls} if feature_cls else {}  # 'getter': through forward_intermediates
    model = starquad.create_model(name, features_only=True, **extra).eval()
    channels, reductions = model.feature_info.channels(), model.feature_info.reduction()
    assert len(channels) >= 4
    feats = model(_input(FEAT_SIZE))
    assert len(feats) == len(channels)
    for f, chs, red in zip(feats, channels, reductions, strict=True):
        assert f.shape == (1, chs, FEAT_SIZE // red, FEAT_SIZE // red) and not torch.isnan(f).any()


@pytest.mark.parametrize("name", MODELS)
@torch.no_grad()
def test_forward_intermediates(name):
    model = starquad.create_model(name).eval()
    x = _input(FEAT_SIZE)
    info = model.feature_info
    final, feats = model.forward_intermediates(x)
    assert len(feats) == len(info) >= 3
    for f, entry in zip(feats, info, strict=True):
        assert f.shape[1] == entry["num_chs"] and f.shape[-1] <= math.ceil(FEAT_SIZE / entry["reduction"]) + 1
    torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
    only = model.forward_intermediates(x, indices=1, intermediates_only=True)
    torch.testing.assert_close(only[0], feats[-1], rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@torch.no_grad()
def test_torchscript_matches_eager(name):
    model = _scriptable(name)
    scripted = torch.jit.script(model)
    x = _input(BWD_SIZE)
    torch.testing.assert_close(scripted(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_fx_forward_and_backward(name):
    """torchvision's feature extractor over timm's no-trace leaves: bitwise the module's logits (inference mode),
    every parameter gets a gradient in train mode."""
    model = starquad.create_model(name, num_classes=7).eval()
    with torch.inference_mode():
        x = _input(BWD_SIZE)
        assert torch.equal(next(iter(_fx_model(model)(x).values())), model(x))
    fx = _fx_model(model.train())
    out = next(iter(fx(_input(BWD_SIZE, batch=2)).values()))
    out.mean().backward()
    assert out.shape == (2, 7) and all(p.grad is not None for p in fx.parameters())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@torch.no_grad()
def test_fx_then_torchscript(name):
    """A traced feature extractor scripts too (generated code keeps forward's annotations)."""
    model = _scriptable(name)
    scripted = torch.jit.script(_fx_model(model))
    x = _input(BWD_SIZE)
    torch.testing.assert_close(next(iter(scripted(x).values())), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["starnet_s050", "quadranet_xxs36", "hornet_t", "demonet_d12_w96"])
@torch.no_grad()
def test_intermediates_head_and_checkpointing(name):
    model = starquad.create_model(name, num_classes=10).eval()
    x = _input(64, batch=2)
    feats = model.forward_features(x)
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    ref = model(x)
    model.set_grad_checkpointing(True)
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
    model.train()
    with torch.enable_grad():
        model(x.requires_grad_()).sum().backward()  # checkpointed training step runs
    model.eval()
    model.reset_classifier(5)
    assert model(x).shape == (2, 5) and model.get_classifier().out_features == 5


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_param_groups_cover_every_parameter(name):
    model = starquad.create_model(name, num_classes=10)
    groups = group_parameters(model, model.group_matcher())
    grouped = sorted(n for names in groups.values() for n in names)
    assert grouped == sorted(n for n, _ in model.named_parameters())
    assert isinstance(model.no_weight_decay(), set)
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (3, 224, 224) and cfg["paper_ids"].startswith("arXiv:")
    assert model.get_submodule(cfg["first_conv"]).in_channels == 3


@pytest.mark.parametrize("name", ["starnet_s050", "demonet_d12_w96", "quadranet_xxs36"])
@torch.no_grad()
def test_prune_intermediate_layers_keeps_the_taken_features(name):
    model = starquad.create_model(name, num_classes=10).eval()
    x = _input(64, batch=2)
    full = model.forward_intermediates(x, indices=[1], intermediates_only=True)[0]
    model.prune_intermediate_layers(indices=[1], prune_head=True)
    pruned = model.forward_intermediates(x, indices=[1], intermediates_only=True)[0]
    torch.testing.assert_close(pruned, full, rtol=0, atol=0)
    assert isinstance(model.get_classifier(), torch.nn.Identity)
