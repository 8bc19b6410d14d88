"""int8 export: calibration data that fits or is refused, the products found and kept in float on purpose, the
drop check that writes nothing, and files that run with onnxruntime / openvino alone."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

import starquad
from starquad.deploy import onnx_bytes, prepare_for_inference
from starquad.deploy.int8 import (
    Int8Result,
    calibration_set,
    choose_products,
    export_int8,
    ort_int8,
    product_nodes,
    product_scopes,
    product_sqnr,
)
from starquad.deploy.verify import ExportError
from starquad.errors import ConfigError, DatasetError, StarquadError
from starquad.extras import MissingExtraError

SIZE = (3, 16, 16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """StarNet-S050 trained for 2 epochs on synthetic 16² images (about 90% top-1): a model whose int8 drop means
    something."""
    from starquad.models import load_checkpoint
    from starquad.train import TrainConfig, train

    out = tmp_path_factory.mktemp("int8") / "run"
    cfg = TrainConfig(model="starnet_s050", data="synthetic", img_size=16, epochs=2, batch_size=50, smoothing=0.0,
                      threads=1, warmup_epochs=0, output=str(out), log_interval=10**6)  # fmt: skip
    train(cfg, log=lambda m: None)
    model = starquad.create_model("starnet_s050", num_classes=10)
    load_checkpoint(model, out / "last.safetensors")
    return model.eval()


def _float_onnx(model, size=SIZE) -> bytes:
    return onnx_bytes(prepare_for_inference(model, merge_branches=False), torch.randn(2, *size), dynamic_batch=True)


def test_calibration_images_have_the_models_shape_and_selection_is_disjoint():
    calib, labels = calibration_set("synthetic", SIZE, 20)
    select, _ = calibration_set("synthetic", SIZE, 30, skip=20)
    assert calib.shape == (20, *SIZE) and calib.dtype == np.float32 and labels.shape == (20,)
    flat_c, flat_s = calib.reshape(20, -1), select.reshape(30, -1)
    assert not any((flat_s == row).all(1).any() for row in flat_c)  # no calibration image in the selection set
    again, _ = calibration_set("synthetic", SIZE, 20)
    assert np.array_equal(calib, again)  # the same draw for the same seed


def test_fashion_mnist_calibration_at_its_size_and_resized():
    x, y = calibration_set("fashion-mnist", (1, 28, 28), 8)
    assert x.shape == (8, 1, 28, 28) and set(y) <= set(range(10))
    assert abs(float(x.mean())) < 1.5  # normalised with the split's statistics, not raw 0..255
    assert calibration_set("fashion-mnist", (1, 32, 32), 8, resize=True)[0].shape == (8, 1, 32, 32)


@pytest.mark.parametrize("dataset, size, n, resize, error, message", [
    ("cifar", (3, 32, 32), 8, False, DatasetError, "unknown dataset 'cifar'"),
    ("fashion-mnist", (3, 28, 28), 8, False, DatasetError, "has 1-channel images but the model takes 3 channels"),
    ("fashion-mnist", (1, 224, 224), 8, False, DatasetError, "has 28×28 images but the model takes 224×224"),
    ("fashion-mnist", (1, 28, 28), 0, False, ConfigError, "(--calib-n) must be a whole number >= 1, got 0"),
    ("digits", (1, 8, 8), 5000, False, DatasetError, "fewer than the 5000 asked"),
    ("moons", (1, 8, 8), 8, False, DatasetError, "'moons' is not an image dataset"),
])  # fmt: skip
def test_calibration_data_that_does_not_fit_is_refused(dataset, size, n, resize, error, message):
    with pytest.raises(error) as info:
        calibration_set(dataset, size, n, resize=resize)
    assert message in str(info.value)


@pytest.mark.parametrize("name, kwargs, scope, count", [
    ("starnet_s050", {}, ".star", 1 + 1 + 3 + 1),  # one star product per StarBlock (depths 1, 1, 3, 1)
    ("demonet_d12_w96", {"fusion": "star", "depth": 3, "width": 16}, "", 3),
    ("demonet_d12_w96", {"fusion": "sum", "depth": 3, "width": 16}, "", 0),
    ("quadranet_t25", {"base_dim": 16, "depths": [1, 1, 2, 1]}, ".mixer", 5),  # one a ⊙ b per quadratic conv
])  # fmt: skip
def test_the_products_are_found_block_by_block(name, kwargs, scope, count):
    model = starquad.create_model(name, num_classes=10, **kwargs).eval()
    proto = onnx.load_from_string(_float_onnx(model, (3, 32, 32)))
    products = product_nodes(proto)
    assert len(products) == count
    scopes = product_scopes(proto)
    assert all(scopes[p].endswith(scope) for p in products), [scopes[p] for p in products]


def _readers_of(proto, tensor: str) -> set[str]:
    return {n.op_type for n in proto.graph.node if tensor in n.input}


def test_a_product_kept_in_float_is_not_quantized_and_its_error_is_measured(trained):
    float_model = _float_onnx(trained)
    calib, _ = calibration_set("synthetic", SIZE, 32)
    products = product_nodes(onnx.load_from_string(float_model))
    target = products[0]
    for keep, expect_q in (([], True), ([target], False)):
        proto = onnx.load_from_string(ort_int8(float_model, calib, keep_float=keep))
        out = next(n.output[0] for n in proto.graph.node if n.name == target)
        assert ("QuantizeLinear" in _readers_of(proto, out)) == expect_q
    assert all(v == float("inf") for v in product_sqnr(float_model, float_model, calib[:4], products).values())
    sqnr = product_sqnr(float_model, ort_int8(float_model, calib), calib[:8], products)
    assert set(sqnr) == set(products) and all(5 < v < 80 for v in sqnr.values()), sqnr


class _Scripted:
    """A quantizer whose selection-set top-1 is given per set of products kept in float (the rule's unit test)."""

    float_model = b"float"

    def __init__(self, top1_by_kept):
        self.top1_by_kept, self.calls = top1_by_kept, []

    def __call__(self, keep_float):
        self.calls.append(tuple(keep_float))
        return tuple(keep_float)

    def top1(self, model, images, labels):
        return 90.0 if model == b"float" else self.top1_by_kept[frozenset(model)]


def test_the_least_sqnr_products_are_kept_in_float_until_the_drop_fits():
    sqnr = {"a": 30.0, "b": 12.0, "c": 20.0}
    quantizer = _Scripted({frozenset(): 87.0, frozenset("b"): 88.5, frozenset("bc"): 89.6})
    _, kept, steps = choose_products(quantizer, ["a", "b", "c"], sqnr, (None, np.zeros(10)), 0.5, lambda m: None)
    assert kept == ["b", "c"] and quantizer.calls == [(), ("b",), ("b", "c")]
    assert [round(s["selection_drop"], 6) for s in steps] == [3.0, 1.5, 0.4]
    quantizer = _Scripted({frozenset(): 89.8})
    assert choose_products(quantizer, ["a", "b"], sqnr, (None, np.zeros(10)), 0.5, lambda m: None)[1] == []


_STANDALONE = """
import sys, json, numpy as np
x = np.load(sys.argv[2])
if sys.argv[1].endswith(".onnx"):
    import onnxruntime as ort
    s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    y = s.run(None, {s.get_inputs()[0].name: x})[0]
else:
    import openvino as ov
    y = next(iter(ov.Core().compile_model(sys.argv[1], "CPU")(x).values()))
np.save(sys.argv[3], y)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "starquad")))
"""


@pytest.mark.slow
@pytest.mark.parametrize("runtime, suffix", [("onnxruntime", ".onnx"), ("openvino", ".xml")])
def test_the_int8_model_is_written_with_its_choice_and_runs_without_starquad(trained, tmp_path, runtime, suffix):
    path = tmp_path / f"model.int8{suffix}"
    result = export_int8(trained, path, SIZE, calib="synthetic", calib_n=64, select_n=200, eval_n=300,
                         runtime=runtime, max_drop=5.0, log=lambda m: None)  # fmt: skip
    assert isinstance(result, Int8Result) and result.top1_float > 60
    assert result.drop <= 5.0
    assert len(result.products) == 6 and result.eval_n == 300
    report = json.loads(path.with_suffix(".json").read_text())
    assert report["runtime"] == runtime and report["top1_int8"] == result.top1_int8
    assert {"drop", "drop_all_quantized", "products", "selection_drops"} <= set(report)
    x, _ = calibration_set("synthetic", SIZE, 16, split="test")
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run([sys.executable, "-c", _STANDALONE, str(path), str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy")], capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []  # starquad was never imported
    with torch.no_grad():
        expected = trained(torch.from_numpy(x)).argmax(1).numpy()
    assert np.mean(np.load(tmp_path / "y.npy").argmax(1) == expected) >= 0.8  # int8 agrees with the float model


def test_a_drop_past_max_drop_fails_and_writes_nothing(trained, tmp_path, monkeypatch):
    import starquad.deploy.int8 as int8

    real = int8.ort_int8
    # calibrated on images scaled to 1/1000: every activation range far too narrow, the int8 model saturates
    monkeypatch.setattr(int8, "ort_int8", lambda model, calib, **kw: real(model, calib * 1e-3, **kw))
    path = tmp_path / "model.onnx"
    with pytest.raises(ExportError) as info:
        export_int8(trained, path, SIZE, calib="synthetic", calib_n=32, select_n=100, eval_n=200, max_drop=2.0,
                    log=lambda m: None)  # fmt: skip
    assert "> --max-drop 2" in str(info.value) and "nothing written" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def _cli(argv, capsys) -> tuple[int, str]:
    from starquad.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_past_max_drop_gives_one_line_and_writes_nothing(trained, tmp_path, monkeypatch, capsys):
    from safetensors.torch import save_file

    import starquad.deploy.int8 as int8

    real = int8.ort_int8
    monkeypatch.setattr(int8, "ort_int8", lambda model, calib, **kw: real(model, calib * 1e-3, **kw))
    save_file(trained.state_dict(), str(tmp_path / "w.safetensors"))
    out = tmp_path / "out"
    out.mkdir()
    code, err = _cli(["export", "starnet_s050", "--num-classes", "10", "--img-size", "16", "--checkpoint",
                      str(tmp_path / "w.safetensors"), "--int8", "--calib", "synthetic", "--calib-n", "32",
                      "--eval-n", "200", "--max-drop", "2", "-o", str(out / "m.onnx")], capsys)  # fmt: skip
    assert code != 0 and err.count("\n") == 1 and "> --max-drop 2" in err and "Traceback" not in err, err
    assert list(out.iterdir()) == []


def test_cli_openvino_not_installed_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)
    code, err = _cli(["export", "starnet_s050", "--img-size", "16", "--int8", "--calib", "synthetic", "--runtime",
                      "openvino", "-o", str(tmp_path / "m.xml")], capsys)  # fmt: skip
    assert code != 0 and err.count("\n") == 1 and "pip install 'starquad[deploy]'" in err, err
    assert list(tmp_path.iterdir()) == []


def test_int8_for_a_runtime_that_is_not_installed_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nncf", None)  # import nncf -> ImportError
    model = starquad.create_model("starnet_s050", num_classes=10)
    with pytest.raises(MissingExtraError) as info:
        export_int8(model, tmp_path / "m.xml", SIZE, calib="synthetic", runtime="openvino")
    assert "pip install 'starquad[deploy]'" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"runtime": "tensorrt"}, "int8 export runs on onnxruntime or openvino"),
    ({"method": "mse"}, "unknown calibration method 'mse'"),
    ({"max_drop": -1}, "--max-drop must be a number of top-1 points >= 0"),
    ({"runtime": "openvino", "path": "m.onnx"}, "is written as .xml"),
])  # fmt: skip
def test_bad_options_are_refused(kwargs, message, tmp_path):
    path = tmp_path / kwargs.pop("path", "m.onnx" if kwargs.get("runtime") != "openvino" else "m.xml")
    with pytest.raises(StarquadError) as info:
        export_int8(starquad.create_model("starnet_s050"), path, calib="synthetic", **kwargs)
    assert message in str(info.value)


def test_bench_times_the_quantized_file_for_onnx_runtimes_only():
    from starquad.bench.backends import deployable, make_runner

    model = starquad.create_model("starnet_s050", num_classes=10).eval()
    x = torch.randn(1, *SIZE)
    data = deployable(model, "onnxruntime", x, precision="int8")
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert make_runner(data, "onnxruntime", x, threads=1, precision="int8")() is not None
    with pytest.raises(ConfigError, match="times fp32, bf16 only"):
        make_runner(model, "eager", x, threads=1, precision="int8")
