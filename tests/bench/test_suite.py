import importlib.util
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from starquad.bench.backends import as_numpy, deployable, gemm_peak_gflops, make_runner
from starquad.bench.suite import LatencyConfig, bench_latency, bench_memory, bench_throughput, expand_models
from starquad.cli import main
from starquad.errors import ConfigError, UnknownModelError

HAVE_OPENVINO = importlib.util.find_spec("openvino") is not None
BACKENDS = [
    "eager",
    "onnxruntime",
    pytest.param("compile", marks=pytest.mark.slow),
    pytest.param("aoti", marks=pytest.mark.slow),
    pytest.param("openvino", marks=pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino not installed")),
]


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.f1, self.f2 = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.conv(x)
        return self.head((nn.functional.relu6(self.f1(x)) * self.f2(x)).mean((2, 3)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_agrees_with_eager_pytorch(backend):
    torch.manual_seed(0)
    model = Tiny().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = model(x).numpy()
    run = make_runner(model, backend, x, threads=1)
    np.testing.assert_allclose(as_numpy(run()), ref, atol=1e-4, rtol=1e-4)


def test_an_onnx_file_exported_elsewhere_runs_as_the_module_would():
    """``deployable`` is make_runner's slow step split out: its ONNX bytes, run later, give the module's output."""
    torch.manual_seed(0)
    model, x = Tiny().eval(), torch.randn(1, 3, 16, 16)
    onnx_file = deployable(model, "onnxruntime", x)
    assert isinstance(onnx_file, bytes) and isinstance(deployable(model, "eager", x), nn.Module)
    with torch.no_grad():
        np.testing.assert_allclose(as_numpy(make_runner(onnx_file, "onnxruntime", x, 1)()), model(x).numpy(),
                                   atol=1e-4, rtol=1e-4)  # fmt: skip
    with pytest.raises(ConfigError, match="the eager backend runs PyTorch modules, not ONNX files"):
        make_runner(onnx_file, "eager", x, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_times_finite_positive(backend):
    from starquad.bench.latency import time_call

    stats = time_call(make_runner(Tiny(), backend, torch.randn(1, 3, 16, 16), threads=1), warmup=1, runs=3)
    assert math.isfinite(stats.median_ms) and stats.median_ms > 0 and stats.p10_ms <= stats.p90_ms


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_gemm_peak_is_a_plausible_rate(backend):
    peak = gemm_peak_gflops(backend, threads=1, sizes=(128, 256), runs=3)
    assert 0.1 < peak < 1e4  # GFLOP/s of one CPU thread


def test_latency_rows_have_the_roofline():
    cfg = LatencyConfig(backends=("eager", "onnxruntime"), img_size=32, warmup=1, runs=3, threads=1, roofline=True)
    rows = bench_latency(["starnet_s050"], cfg)
    assert [r["backend"] for r in rows] == ["eager", "onnxruntime"]
    for r in rows:
        assert r["ms"] > 0 and r["top1"] == 55.7 and r["input"] == "3×32×32"
        assert r["gflops"] == pytest.approx(2 * r["macs_m"] * 1e6 / (r["ms"] * 1e-3) / 1e9)
        assert r["roofline_pct"] == pytest.approx(100 * r["gflops"] / r["peak_gflops"])


def test_bad_latency_settings():
    with pytest.raises(ConfigError, match="backends must be one of eager, compile"):
        LatencyConfig(backends=("tensorrt",)).validate()
    with pytest.raises(ConfigError, match="runs must be >= 1"):
        LatencyConfig(runs=0).validate()
    with pytest.raises(ConfigError, match="times fp32, int8 only"):
        make_runner(Tiny(), "onnxruntime", torch.randn(1, 3, 8, 8), threads=1, precision="bf16")
    with pytest.raises(ConfigError, match="the roofline compares with the fp32/bf16 GEMM peak"):
        LatencyConfig(backends=("onnxruntime",), precision="int8", roofline=True).validate()


def test_expand_models_patterns_and_errors():
    assert expand_models(["starnet_s[12]", "timm:starnet_s1", "mobileone_s0"]) == [
        "starnet_s1", "starnet_s2", "timm:starnet_s1", "mobileone_s0",
    ]  # fmt: skip
    with pytest.raises(UnknownModelError, match="starnet_s9"):
        expand_models(["starnet_s9"])
    with pytest.raises(UnknownModelError, match="no starquad or timm model matches"):
        expand_models(["nothing_like_this_*"])


def test_throughput_and_memory_rows():
    rows = bench_throughput(["starnet_s050"], batch=2, threads=1, img_size=32, runs=2)
    assert rows[0]["infer_samples_s"] > 0 and rows[0]["train_samples_s"] > 0
    rows = bench_memory(["starnet_s050", "starnet_s100"], batch=2, img_size=32)
    assert rows[0]["saved_ratio"] == 1.0 and rows[1]["saved_mib"] > rows[0]["saved_mib"] > 0
    assert rows[0]["peak_rss_rise_mib"] is None or rows[0]["peak_rss_rise_mib"] >= 0


def test_cli_latency_table_json_csv_and_plot(tmp_path, capsys):
    js, cs, png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "p.png"
    argv = ["bench", "latency", "starnet_s050", "--model", "timm:starnet_s050", "--img-size", "32", "--runs", "2",
            "--warmup", "0", "--threads", "1", "--json", str(js), "--csv", str(cs), "--plot", str(png)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| starnet_s050 | eager |" in out and "| timm:starnet_s050 | eager |" in out and "2 models" in out
    assert [r["model"] for r in json.loads(js.read_text())] == ["starnet_s050", "timm:starnet_s050"]
    assert cs.read_text().splitlines()[0].startswith("model,backend,batch")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_export(tmp_path, capsys):
    path = tmp_path / "s.onnx"
    assert main(["export", "starnet_s050", "-o", str(path), "--img-size", "32", "--num-classes", "4"]) == 0
    assert "max abs diff" in capsys.readouterr().out and path.is_file()


def test_cli_bench_errors_are_one_line(capsys):
    assert main(["bench", "latency", "no_such_model"]) == 1
    assert "no_such_model" in capsys.readouterr().err
    assert main(["bench", "flops"]) == 1
    assert "name at least one model" in capsys.readouterr().err
