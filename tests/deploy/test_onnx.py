import numpy as np
import onnx
import pytest
import torch

import starquad
from starquad.deploy import ExportError, export_onnx, ort_session, prepare_for_inference


def _trained_stats(model):
    """Real BatchNorm running statistics, so folding has something to fold."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, 64, 64))
    return model.eval()


@torch.no_grad()
def test_prepare_keeps_outputs_and_merges_the_star_branches():
    torch.manual_seed(0)
    model = _trained_stats(starquad.create_model("starnet_s050"))
    deployed = prepare_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deployed.modules())
    block = deployed.stages[0][1]
    assert block.f2 is None and block.f1.conv.out_channels == 2 * model.stages[0][1].f1.conv.out_channels
    assert model.stages[0][1].f2 is not None  # the original is untouched
    assert prepare_for_inference(model, merge_branches=False).stages[0][1].f2 is not None
    x = torch.randn(2, 3, 96, 96)
    ref = model(x)
    rel = ((deployed(x) - ref).abs().max() / ref.abs().max()).item()
    assert rel <= 1e-5


@torch.no_grad()
def test_prepare_reparameterizes_timm_models():
    torch.manual_seed(0)
    model = _trained_stats(starquad.create_model("mobileone_s0", num_classes=10))
    deployed = prepare_for_inference(model)
    assert sum(1 for _ in deployed.modules()) < sum(1 for _ in model.modules())  # branches collapsed
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(deployed(x), model(x), rtol=1e-4, atol=1e-4)


def test_export_round_trip(tmp_path):
    torch.manual_seed(0)
    model = _trained_stats(starquad.create_model("starnet_s050", num_classes=7))
    path = tmp_path / "m.onnx"
    result = export_onnx(model, path, (3, 64, 64), dynamic_batch=True)
    assert path.is_file() and result.size_bytes == path.stat().st_size and result.max_abs_diff <= 1e-4
    graph = onnx.load(str(path)).graph
    assert not any(n.op_type == "BatchNormalization" for n in graph.node)  # folded before export
    assert not graph.initializer[0].data_location  # weights embedded: one file
    session = ort_session(path, threads=1)
    x = torch.randn(5, 3, 64, 64)  # a batch size the export never saw
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4, rtol=0)


def test_dynamic_batch_and_weights_computed_in_the_graph_are_folded(tmp_path):
    """A QuadraNet's branch weights are slices of one parameter: the exported graph holds them as plain initializers
    (no node computes from weights alone: no Gather/Reshape over weights for a quantizer to trip on), and a dynamic
    batch exports (torch.export specialises a batch of 1, so the export traces at 2)."""
    model = starquad.create_model("quadranet_t25", base_dim=16, depths=[1, 1, 2, 1], num_classes=10).eval()
    path = tmp_path / "q.onnx"
    result = export_onnx(model, path, (3, 32, 32), dynamic_batch=True)
    assert result.dynamic_batch and result.max_abs_diff <= 1e-4
    graph = onnx.load(str(path)).graph
    weights = {i.name for i in graph.initializer}
    assert not [n.name for n in graph.node if all(i in weights for i in n.input if i)]  # nothing left to fold
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert all(n.input[1] in weights for n in convs)  # every conv reads its weight straight from an initializer


def test_failed_verification_writes_nothing(tmp_path):
    model = starquad.create_model("starnet_s050", num_classes=3)
    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="differs from PyTorch's"):
        export_onnx(model, path, (3, 32, 32), atol=-1.0)  # no difference can pass a negative tolerance
    assert list(tmp_path.iterdir()) == []


def test_bad_input_size():
    with pytest.raises(ExportError, match=r"\(C, H, W\)"):
        export_onnx(starquad.create_model("starnet_s050"), "unused.onnx", (224, 224))
