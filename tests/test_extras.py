"""A lean core: what an extra brings fails without it in one line naming the ``pip install`` to run, and what the
core does (build, train) works without any extra. An uninstalled package is simulated by ``sys.modules[name] =
None`` (its import then raises ImportError, as a missing one does)."""

import sys

import pytest
import torch

import starquad
from starquad.cli import main
from starquad.extras import MissingExtraError, install_hint, installed, require

SYNTHETIC = ["--model", "starnet_s050", "--data", "synthetic", "--img-size", "16", "--epochs", "1", "-b", "50",
             "--subset", "100", "--threads", "1", "--warmup-epochs", "0"]  # fmt: skip


def _uninstall(monkeypatch, *names):
    for name in names:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def test_require_names_the_extra(monkeypatch):
    assert require("onnx", "x").__name__ == "onnx" and installed("onnx")
    _uninstall(monkeypatch, "onnxruntime", "scipy")
    with pytest.raises(MissingExtraError, match=r"int8 needs onnxruntime, which is not installed: "
                                                r"pip install 'starquad\[deploy\]'"):  # fmt: skip
        require("onnxruntime.quantization", "int8")
    with pytest.raises(MissingExtraError, match=r"starquad\[report\]"):
        require("scipy.stats", "verdicts")
    assert not installed("onnxruntime")
    assert install_hint("ray", "--ray") == "--ray needs ray[tune], which is not installed: pip install 'starquad[ray]'"


def test_export_without_the_deploy_extra_says_which_to_install(monkeypatch, tmp_path, capsys):
    _uninstall(monkeypatch, "onnxscript")
    out = tmp_path / "m.onnx"
    assert main(["export", "starnet_s050", "-o", str(out), "--img-size", "32"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'starquad[deploy]'" in err, err
    assert not out.exists()


def test_the_core_builds_and_trains_without_any_extra(monkeypatch, tmp_path, capsys):
    _uninstall(monkeypatch, "onnx", "onnxscript", "onnxruntime", "openvino", "nncf", "sklearn", "scipy",
               "matplotlib", "ray")  # fmt: skip
    model = starquad.create_model("starnet_s1")
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    assert main(["train", *SYNTHETIC, "--output", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "best.safetensors").exists() and not (tmp_path / "run" / "curves.png").exists()
    hint = "curves.png needs matplotlib, which is not installed: pip install 'starquad[report]'"
    assert hint in capsys.readouterr().err
