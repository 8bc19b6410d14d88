"""One conformance test over every registered starquad image model (timm's model surface).

Adapted timm baselines (``baseline_of`` in their cfg, e.g. resnet18_small) are timm's models and keep timm's
surface; they are tested in tests/models/test_registry.py."""

import pytest
import torch
from timm.models import group_parameters

import starquad

IMAGE_MODELS = [
    n
    for n in starquad.list_models()
    if starquad.get_model_cfg(n).get("input_size", (0,))[0] == 3 and not starquad.get_model_cfg(n).get("baseline_of")
]
SIZE = 64


def _build(name, **kw):
    torch.manual_seed(0)
    return starquad.create_model(name, num_classes=10, **kw)


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_registry_is_populated():
    assert {"starnet_s1", "starnet_s4", "demonet_d12_w192"} <= set(IMAGE_MODELS)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_forward_backward_every_param_gets_a_grad(name, x):
    model = _build(name).train()
    out = model(x)
    assert out.shape == (2, 10)
    out.logsumexp(-1).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_features_only(name, x):
    model = _build(name, features_only=True).eval()
    feats = model(x)
    assert len(feats) == len(model.feature_info.channels())
    for f, chs, red in zip(feats, model.feature_info.channels(), model.feature_info.reduction(), strict=True):
        assert f.shape == (2, chs, SIZE // red, SIZE // red)


@pytest.mark.parametrize("name", IMAGE_MODELS)
@torch.no_grad()
def test_intermediates_head_and_checkpointing(name, x):
    model = _build(name).eval()
    feats = model.forward_features(x)
    final, inter = model.forward_intermediates(x)
    torch.testing.assert_close(final, feats, rtol=0, atol=0)
    assert inter[-1].shape[1] == model.num_features
    torch.testing.assert_close(model.forward_intermediates(x, indices=1, intermediates_only=True)[0], inter[-1])
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    ref = model(x)
    model.set_grad_checkpointing(True)
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
    model.reset_classifier(5)
    assert model(x).shape == (2, 5) and model.get_classifier().out_features == 5
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_param_groups_cover_every_parameter(name):
    model = _build(name)
    groups = group_parameters(model, model.group_matcher())
    grouped = sorted(n for names in groups.values() for n in names)
    assert grouped == sorted(n for n, _ in model.named_parameters())
    assert isinstance(model.no_weight_decay(), set)
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (3, 224, 224) and cfg["paper_ids"].startswith("arXiv:")
    assert model.get_submodule(cfg["first_conv"]).in_channels == 3


@pytest.mark.parametrize("name", ["starnet_s050", "demonet_d12_w96"])
@torch.no_grad()
def test_prune_intermediate_layers_keeps_the_taken_features(name, x):
    model = _build(name).eval()
    full = model.forward_intermediates(x, indices=[1], intermediates_only=True)[0]
    model.prune_intermediate_layers(indices=[1], prune_head=True)
    pruned = model.forward_intermediates(x, indices=[1], intermediates_only=True)[0]
    torch.testing.assert_close(pruned, full, rtol=0, atol=0)
    assert isinstance(model.get_classifier(), torch.nn.Identity)
