"""Inference backends for timing: one callable per (model, backend, input), and the same backend's GEMM peak.

* ``eager``: PyTorch, ``inference_mode``.
* ``compile``: ``torch.compile`` (inductor) with freezing on (weights become constants, conv-BN folded by
  inductor too); compiled on the first call, which :func:`make_runner` makes before returning.
* ``onnxruntime``: the model exported by torch's ONNX exporter, run by ONNX Runtime's CPU execution
  provider with ``ORT_ENABLE_ALL`` and explicit intra-op threads (one inter-op thread, sequential).
* ``openvino``: the same ONNX file compiled by OpenVINO for the CPU; f32 inference precision unless
  ``precision='bf16'`` (OpenVINO would otherwise pick bf16 by itself on CPUs that have it).

``precision='int8'`` (onnxruntime, openvino) times the model statically quantized as ``starquad export --int8``
quantizes it (:mod:`starquad.deploy.int8`: per-channel int8 weights, every product in int8), calibrated on
:data:`INT8_CALIBRATION_IMAGES` generated images of the input size: what is timed is the speed, not the accuracy,
which ``export --int8`` measures on real data.

Models are re-parameterised first (:func:`~starquad.deploy.prepare_for_inference`) unless told not to, so
MobileOne/FastViT run their inference form and StarNet its folded one (with f1/f2 merged into one conv for
eager/compile, where that pays) — as each would be deployed.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

# torch and numpy are imported inside the functions: the CLI reads BACKENDS and PRECISIONS from this module to
# build its parser, and `starquad --help` should not wait for torch.
from starquad.errors import ConfigError
from starquad.extras import require
from starquad.runtime import torch_threads

__all__ = ["BACKENDS", "BACKEND_TABLE", "PRECISIONS", "Backend", "deployable", "gemm_peak_gflops", "get_backend",
           "make_runner"]  # fmt: skip

Runner = Callable[[], Any]

if TYPE_CHECKING:
    import numpy as np
    import torch
    import torch.nn as nn

PRECISIONS = ("fp32", "bf16", "int8")
INT8_CALIBRATION_IMAGES = 8  # speed only: the ranges need not be good, just real


def _openvino():
    return require("openvino", "the openvino backend")


def _openvino_compiled(onnx_file: Any, threads: int, precision: str):
    """``onnx_file`` (ONNX bytes, or an OpenVINO model: NNCF's int8 one) compiled for the CPU."""
    ov = _openvino()
    if isinstance(onnx_file, bytes):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            path.write_bytes(onnx_file)
            model = ov.Core().read_model(str(path))
    else:
        model = onnx_file
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}  # fmt: skip
    return ov.Core().compile_model(model, "CPU", config)


# --- one record per backend: how to run a model, how to run a GEMM, which precisions ---------------------------


def _torch_runner(model: nn.Module, x: torch.Tensor, threads: int, precision: str, compile: bool) -> Runner:
    import torch

    fn = torch.compile(model, options={"freezing": True}) if compile else model  # freezing: weights → constants
    autocast = precision == "bf16"

    def run():
        with torch_threads(threads), torch.inference_mode():
            with torch.autocast(x.device.type, torch.bfloat16, enabled=autocast):
                return fn(x)

    return run


def _aoti_runner(model: nn.Module, x: torch.Tensor, threads: int, precision: str) -> Runner:
    import torch

    from starquad.deploy import load_pt2, pt2_bytes

    with torch_threads(threads):
        fn = load_pt2(pt2_bytes(model, x))  # compiled for this input shape, weights frozen

    def run():
        with torch_threads(threads), torch.inference_mode():
            return fn(x)

    return run


def _ort_runner(onnx_file: bytes, x: torch.Tensor, threads: int, precision: str) -> Runner:
    from starquad.deploy import ort_session

    session = ort_session(onnx_file, threads)
    name, feed = session.get_inputs()[0].name, x.numpy()
    return lambda: session.run(None, {name: feed})


def _openvino_runner(onnx_file: bytes, x: torch.Tensor, threads: int, precision: str) -> Runner:
    request = _openvino_compiled(onnx_file, threads, precision).create_infer_request()
    feed = x.numpy()
    return lambda: request.infer({0: feed})


def _torch_gemm(a: torch.Tensor, b: torch.Tensor, threads: int, precision: str) -> Runner:
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = a.to(dtype), b.to(dtype)

    def run():
        with torch_threads(threads):
            return torch.mm(a, b)

    return run


def _ort_gemm(a: torch.Tensor, b: torch.Tensor, threads: int, precision: str) -> Runner:
    from starquad.deploy import ort_session

    session = ort_session(_matmul_onnx(), threads)
    feed = {"a": a.numpy(), "b": b.numpy()}
    return lambda: session.run(None, feed)


def _openvino_gemm(a: torch.Tensor, b: torch.Tensor, threads: int, precision: str) -> Runner:
    request = _openvino_compiled(_matmul_onnx(), threads, precision).create_infer_request()
    feed = {0: a.numpy(), 1: b.numpy()}
    return lambda: request.infer(feed)


@dataclass(frozen=True)
class Backend:
    """How one backend runs a model and a square GEMM.

    Attributes:
        name: the CLI name.
        runner: ``(model, x, threads, precision) -> run``; the model is already in its inference form — or,
            for a runtime that runs ONNX (``onnx``), the exported file's bytes.
        gemm: ``(a, b, threads, precision) -> run`` for the roofline's GEMM peak (same runtime, same threads).
        precisions: precisions it can time.
        merge_branches: StarNet's f1/f2 merge pays in this runtime (see ``prepare_for_inference``).
        channels_last: channels-last input memory applies (PyTorch only).
        onnx: the runtime runs the ONNX export of the model (made by :func:`deployable`).
    """

    name: str
    runner: Callable[[nn.Module, torch.Tensor, int, str], Runner]
    gemm: Callable[[torch.Tensor, torch.Tensor, int, str], Runner]
    precisions: tuple[str, ...] = PRECISIONS
    merge_branches: bool = False
    channels_last: bool = False
    onnx: bool = False


BACKEND_TABLE: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("eager", partial(_torch_runner, compile=False), _torch_gemm, precisions=("fp32", "bf16"),
                merge_branches=True, channels_last=True),
        # a GEMM is one library call: compiling it changes nothing, so compile shares eager's GEMM
        Backend("compile", partial(_torch_runner, compile=True), _torch_gemm, precisions=("fp32", "bf16"),
                merge_branches=True, channels_last=True),
        # AOTInductor: torch.export + ahead-of-time Inductor with frozen weights, as `starquad export --format pt2`
        Backend("aoti", _aoti_runner, _torch_gemm, precisions=("fp32",), merge_branches=True),
        Backend("onnxruntime", _ort_runner, _ort_gemm, precisions=("fp32", "int8"), onnx=True),
        Backend("openvino", _openvino_runner, _openvino_gemm, onnx=True),
    )
}
BACKENDS = tuple(BACKEND_TABLE)


def get_backend(name: str, precision: str = "fp32") -> Backend:
    """The record of ``name``, checked against ``precision``."""
    if name not in BACKEND_TABLE:
        raise ConfigError(f"unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    backend = BACKEND_TABLE[name]
    if precision not in backend.precisions:
        raise ConfigError(f"the {name} backend times {', '.join(backend.precisions)} only; use --precision "
                          f"{backend.precisions[0]}")  # fmt: skip
    return backend


def deployable(model: nn.Module, backend: str, x: torch.Tensor, precision: str = "fp32",
               reparameterize: bool = True, channels_last: bool = False) -> nn.Module | bytes:  # fmt: skip
    """What ``backend`` runs for ``model``: its inference form (re-parameterised unless told not to, a copy
    either way), or for an ONNX runtime the exported file. The slow step of :func:`make_runner`, split out so
    that it can run elsewhere (another process) and its result be timed here."""
    import torch

    from starquad.deploy import onnx_bytes, prepare_for_inference

    record = get_backend(backend, precision)
    if reparameterize:
        model = prepare_for_inference(model, merge_branches=record.merge_branches)
    else:  # a copy all the same: eval() and channels-last must not touch the caller's model
        model = copy.deepcopy(model).eval()
    if channels_last and record.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if not record.onnx:
        return model
    data = onnx_bytes(model, x)
    return _int8(data, backend, tuple(x.shape[1:])) if precision == "int8" else data


def _int8(onnx_file: bytes, backend: str, input_size: tuple[int, ...]) -> Any:
    """``onnx_file`` quantized for ``backend`` (every product in int8) on generated images of ``input_size``."""
    from starquad.deploy.int8 import calibration_set, openvino_int8, ort_int8

    images, _ = calibration_set("synthetic", input_size, INT8_CALIBRATION_IMAGES)
    return ort_int8(onnx_file, images) if backend == "onnxruntime" else openvino_int8(onnx_file, images)


def make_runner(
    model: nn.Module | bytes,
    backend: str,
    x: torch.Tensor,
    threads: int,
    precision: str = "fp32",
    reparameterize: bool = True,
    channels_last: bool = False,
) -> Runner:
    """A zero-argument callable running one inference of ``model`` on ``x`` with ``backend``.

    ``model`` is a module, or for an ONNX runtime the file :func:`deployable` exported (used as it is). The
    callable has already run once (compiled, sessions created), so it is ready to be timed. ``threads`` is
    the runtime's thread count; PyTorch backends hold it only while a call runs (:func:`torch_threads`).
    """
    import torch

    record = get_backend(backend, precision)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
    import torch.nn as nn

    if not isinstance(model, nn.Module):  # an exported file (or OpenVINO's int8 model) that deployable() made
        if not record.onnx:
            raise ConfigError(f"the {backend} backend runs PyTorch modules, not ONNX files")
    else:
        model = deployable(model, backend, x, precision, reparameterize, channels_last)
    if channels_last and record.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    run = record.runner(model, x, threads, precision)
    run()  # compile / create the session now, not inside the timed runs
    return run


def _matmul_onnx() -> bytes:
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", "n"])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", "n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "n"])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "gemm", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def gemm_peak_gflops(backend: str, threads: int, sizes: tuple[int, ...] = (512, 1024, 2048), precision: str = "fp32",
                     runs: int = 10) -> float:  # fmt: skip
    """This machine's fp32 (or bf16) square-GEMM rate with ``backend`` and ``threads``: the best over ``sizes``
    of ``2n³ / median time``, in GFLOP/s. The roofline ceiling a model's achieved rate is compared with."""
    import torch

    from starquad.bench.latency import time_call

    record = get_backend(backend, precision)
    best = 0.0
    for n in sizes:
        gen = torch.Generator().manual_seed(n)
        a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
        stats = time_call(record.gemm(a, b, threads, precision), warmup=2, runs=runs, label=f"{backend} GEMM n={n}")
        best = max(best, 2 * n**3 / (stats.median_ms * 1e-3) / 1e9)
    return best


def as_numpy(out: Any) -> np.ndarray:
    """The first output of any backend's runner as a numpy array."""
    import numpy as np
    import torch

    if isinstance(out, torch.Tensor):
        return out.float().numpy()
    if isinstance(out, (list, tuple)):
        return np.asarray(out[0])
    return np.asarray(next(iter(out.values())))  # openvino's result mapping
