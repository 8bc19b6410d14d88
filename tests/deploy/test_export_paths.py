"""Every model family and every search-space op gives the model's outputs through the standard capture paths a
user with timm habits takes: both ONNX exporters, ``torch.jit.trace`` (with its sanity check), ``torch.export``
(the exported module called with gradients on) and OpenVINO's ``convert_model`` of the module.

Layer scales are set to U(0.5, 1), as a trained model has them: at their init value of 1e-6 a branch that a path
drops changes the output by ~1e-6 and no comparison could see it. The search spaces are built as they are
searched (1 channel, 28² input), where the last stage has 1×1 maps."""

import io
import warnings

import numpy as np
import pytest
import torch

import starquad
from starquad.deploy.verify import hides_branches, with_visible_branches
from starquad.models.mixernet import MixerNet
from starquad.nas.space import SPACES, build

ATOL = 1e-4  # float32 reordering by each runtime; a dropped branch moves outputs by ≥ 1e-2 with these scales


def _space_case(space: str, offset: int):
    sp = SPACES[space]
    arch = [(offset + i) % len(sp.candidates) for i in range(sp.num_layers)]  # every candidate, over the offsets
    return build(sp, arch, num_classes=10, in_chans=1), (1, 1, 28, 28)


CASES = {
    "starnet": lambda: (starquad.create_model("starnet_s050", num_classes=10), (1, 3, 64, 64)),
    # the registered families, made shallow (the same blocks; the depth only costs test time)
    "quadranet": lambda: (starquad.create_model("quadranet_xxs36", depths=(1, 1, 2, 1), num_classes=10),
                          (1, 3, 64, 64)),
    "quadranet_quadratic_mlp": lambda: (MixerNet(block="quadra", base_dim=16, depths=(1, 1, 2, 1),
                                                 channel_mixer="quadratic", num_classes=10), (1, 3, 64, 64)),
    "hornet": lambda: (starquad.create_model("hornet_t", depths=(1, 1, 2, 1), base_dim=32, num_classes=10),
                       (1, 3, 64, 64)),
    "demonet": lambda: (starquad.create_model("demonet_d12_w96", depth=2, num_classes=10), (1, 3, 32, 32)),
    "demonet_2d": lambda: (starquad.create_model("demonet_2d"), (4, 2)),
    **{f"mixernet_{kind}": (lambda kind=kind: (MixerNet(block=kind, base_dim=32, depths=(1, 1, 1, 1), num_classes=10),
                                               (1, 3, 64, 64)))
       for kind in ("star", "conv", "skip", "swin")},
    "space_quadranet": lambda: _space_case("quadranet", 0),
    "space_mbconv": lambda: _space_case("mbconv", 0),
    "space_interaction_a": lambda: _space_case("interaction", 0),
    "space_interaction_b": lambda: _space_case("interaction", 10),
}  # fmt: skip


def _case(name: str):
    model, shape = CASES[name]()
    model = with_visible_branches(model.eval(), seed=1)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
    return model, x, ref


def test_the_cases_cover_every_family_and_search_op():
    families = {n.split("_")[0] for n in starquad.list_models() if not starquad.get_model_cfg(n).get("baseline_of")}
    assert families <= {c.split("_")[0] for c in CASES}
    for space in SPACES.values():
        built = [CASES[c]()[0] for c in CASES if c.startswith(f"space_{space.name}")]
        ops = {space.candidates[i].name for model in built for i in model.pretrained_cfg["nas_arch"]}
        assert ops == {c.name for c in space.candidates}, space.name


def _onnx_runtime(data: bytes, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _onnx_torchscript(model, x):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), f, dynamo=False, opset_version=17)
    return _onnx_runtime(f.getvalue(), x)


def _onnx_dynamo(model, x):
    from starquad.deploy import onnx_bytes

    return _onnx_runtime(onnx_bytes(model, x), x)


def _jit_trace(model, x):
    traced = torch.jit.trace(model, (x,))  # gradients on, with trace's own sanity check (check_trace=True)
    return traced(x).detach()


def _torch_export(model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = torch.export.export(model, (x,)).module()
    y = exported(x)  # gradients on
    assert y.requires_grad
    return y.detach()


def _openvino(model, x):
    ov = pytest.importorskip("openvino")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = ov.convert_model(model, example_input=x)
    return ov.Core().compile_model(converted, "CPU")(x.numpy())[0]


PATHS = {"onnx_torchscript": _onnx_torchscript, "onnx_dynamo": _onnx_dynamo, "jit_trace": _jit_trace,
         "torch_export": _torch_export, "openvino": _openvino}  # fmt: skip
SLOW_PATHS = {"onnx_dynamo", "torch_export"}  # seconds per model


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PATHS else p for p in PATHS])
@pytest.mark.parametrize("case", CASES)
def test_capture_path_reproduces_the_model(case, path):
    model, x, ref = _case(case)
    assert not hides_branches(model)
    got = PATHS[path](model, x)
    got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    assert got.shape == tuple(ref.shape)
    np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=ATOL)
