import subprocess
import sys
import textwrap

import pytest
import timm
import torch

import starquad
from starquad.errors import ConfigError, UnknownModelError
from starquad.models import registry


@pytest.fixture
def temporary_models():
    """Register test entrypoints and remove them afterwards (the registry is a module-level dict)."""
    added = []

    def add(fn, **kw):
        registry.register_model(fn, **kw)
        added.append(fn.__name__)
        return fn

    yield add
    for name in added:
        registry._entrypoints.pop(name, None)


def test_falls_through_to_timm():
    model = starquad.create_model("resnet18", num_classes=3)
    assert type(model) is type(timm.create_model("resnet18"))
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    assert type(starquad.create_model("timm:resnet18")) is type(model)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownModelError, match=r"unknown model 'resnet181'.*did you mean: .*resnet18"):
        starquad.create_model("resnet181")
    with pytest.raises(UnknownModelError, match="run 'starquad models'"):
        starquad.create_model("qqqqqqqqqqq")


def test_pretrained_is_refused():
    with pytest.raises(ConfigError, match="never downloads weights"):
        starquad.create_model("resnet18", pretrained=True)


def test_ours_shadow_timm_only_inside_starquad(temporary_models):
    def resnet18(**kwargs):
        return torch.nn.Linear(2, 2)

    temporary_models(resnet18)
    assert isinstance(starquad.create_model("resnet18"), torch.nn.Linear)
    assert not isinstance(timm.create_model("resnet18"), torch.nn.Linear)
    assert not isinstance(starquad.create_model("timm:resnet18"), torch.nn.Linear)
    assert "resnet18" in starquad.list_models("resnet18")
    assert "timm:resnet18" in starquad.list_models("resnet18", include_timm=True)


def test_also_in_timm_refuses_existing_timm_names():
    def resnet50(**kwargs):
        return torch.nn.Identity()

    with pytest.raises(ValueError, match="already exists in timm's registry"):
        registry.register_model(resnet50, also_in_timm=True)
    assert not registry.is_model("resnet50")


def test_list_models_pattern(temporary_models):
    def sq_test_tiny(**kwargs):
        return torch.nn.Identity()

    def sq_test_small(**kwargs):
        return torch.nn.Identity()

    temporary_models(sq_test_tiny)
    temporary_models(sq_test_small)
    assert starquad.list_models("sq_test_*") == ["sq_test_small", "sq_test_tiny"]
    assert starquad.list_models("test_ti") == ["sq_test_tiny"]


def test_import_never_replaces_a_timm_model():
    """Snapshot timm's registry, import every starquad module, and compare (in a fresh interpreter)."""
    code = textwrap.dedent(
        """
        import importlib, pkgutil
        import timm.models._registry as reg
        before = dict(reg._model_entrypoints)
        import starquad
        for m in pkgutil.walk_packages(starquad.__path__, "starquad."):
            if m.name != "starquad.__main__":
                importlib.import_module(m.name)
        changed = [n for n, fn in before.items() if reg._model_entrypoints.get(n) is not fn]
        assert not changed, f"starquad replaced timm models: {changed[:10]}"
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_resnet18_small_runs_its_stages_at_half_the_input_side():
    model = starquad.create_model("resnet18_small", num_classes=10, in_chans=1)
    feats = model.forward_intermediates(torch.randn(2, 1, 28, 28), intermediates_only=True)
    assert [f.shape[-1] for f in feats[1:]] == [14, 7, 4, 2]  # after the stem: the stages
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert not timm.is_model("resnet18_small")  # ours only; timm's resnet18 untouched
    reference = timm.create_model("resnet18", num_classes=10, in_chans=1)
    assert model.conv1.kernel_size == (3, 3) and reference.conv1.kernel_size == (7, 7)


def test_resnet18_small_features_only_reports_its_reductions():
    model = starquad.create_model("resnet18_small", features_only=True)
    feats = model(torch.randn(1, 3, 32, 32))
    assert [32 // r for r in model.feature_info.reduction()] == [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
