"""The export check sees a branch that an exporter drops, even in an untrained model (layer scales 1e-6)."""

import copy

import pytest
import torch

import starquad
from starquad.deploy import ExportError, onnx_bytes, verify_onnx
from starquad.deploy.verify import hides_branches, layer_scales, verified_export, with_visible_branches
from starquad.models.mixernet import MixerNet


class _Zero(torch.nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def _small():
    torch.manual_seed(0)
    return MixerNet(block="conv", base_dim=16, depths=(1, 1, 1, 1), num_classes=3).eval()


def test_untrained_layer_scales_hide_branches_and_the_probe_shows_them():
    model = _small()
    assert {n.rsplit(".", 1)[-1] for n, _ in layer_scales(model)} == {"gamma", "gamma1"}
    assert hides_branches(model)
    probe = with_visible_branches(model)
    assert not hides_branches(probe) and hides_branches(model)  # a copy: the model keeps its own
    assert all(0.5 <= float(p.detach().min()) and float(p.detach().max()) <= 1.0 for _, p in layer_scales(probe))
    assert not hides_branches(starquad.create_model("starnet_s050"))  # no layer scales: nothing hidden


def test_a_dropped_branch_fails_the_check_of_an_untrained_model():
    model = _small()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    def export_dropping_the_mlp(m):
        broken = copy.deepcopy(m)
        for stage in broken.stages:
            for block in stage.blocks:
                block.mlp = _Zero()
        return onnx_bytes(broken, x)

    def difference(data, reference):
        return verify_onnx(data, reference, [x])

    assert difference(export_dropping_the_mlp(model), model) < 1e-4  # the plain check alone is blind to it
    with pytest.raises(ExportError, match=r"with layer scales set to 0\.5–1.*nothing written"):
        verified_export(model, export_dropping_the_mlp, difference, 1e-4, "ONNX Runtime")
    ok = verified_export(model, lambda m: onnx_bytes(m, x), difference, 1e-4, "ONNX Runtime")
    assert ok.max_abs_diff <= 1e-4 and ok.probe_max_abs_diff is not None and ok.probe_max_abs_diff <= 1e-4


def test_export_onnx_checks_an_untrained_model_twice_and_a_trained_one_once(tmp_path):
    from starquad.deploy import export_onnx

    model = _small()
    untrained = export_onnx(model, tmp_path / "a.onnx", (3, 32, 32))
    assert untrained.probe_max_abs_diff is not None and untrained.probe_max_abs_diff <= untrained.atol
    trained = export_onnx(with_visible_branches(model), tmp_path / "b.onnx", (3, 32, 32))
    assert trained.probe_max_abs_diff is None and trained.max_abs_diff <= trained.atol
