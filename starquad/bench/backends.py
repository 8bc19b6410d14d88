"""Inference backends for timing: one callable per (model, backend, input), and the same backend's GEMM peak.

* ``eager``: PyTorch, ``inference_mode``.
* ``compile``: ``torch.compile`` (inductor) with freezing on (weights become constants, conv-BN folded by
  inductor too); compiled on the first call, which :func:`make_runner` makes before returning.
* ``onnxruntime``: the model exported by torch's ONNX exporter, run by ONNX Runtime's CPU execution
  provider with ``ORT_ENABLE_ALL`` and explicit intra-op threads (one inter-op thread, sequential).
* ``openvino``: the same ONNX file compiled by OpenVINO for the CPU; f32 inference precision unless
  ``precision='bf16'`` (OpenVINO would otherwise pick bf16 by itself on CPUs that have it).

Models are re-parameterised first (:func:`~starquad.deploy.prepare_for_inference`) unless told not to, so
MobileOne/FastViT run their inference form and StarNet its folded one (with f1/f2 merged into one conv for
eager/compile, where that pays) — as each would be deployed.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from starquad.bench.latency import time_call
from starquad.errors import ConfigError

__all__ = ["BACKENDS", "PRECISIONS", "gemm_peak_gflops", "make_runner"]

BACKENDS = ("eager", "compile", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16")


def _check(backend: str, precision: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    if backend == "onnxruntime" and precision != "fp32":
        raise ConfigError("the onnxruntime backend times fp32 only; use --precision fp32")


def _openvino():
    try:
        import openvino
    except ImportError as e:
        raise ConfigError("the openvino backend needs OpenVINO: pip install 'starquad[openvino]'") from e
    return openvino


def _openvino_compiled(onnx_file: bytes, threads: int, precision: str):
    ov = _openvino()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(onnx_file)
        model = ov.Core().read_model(str(path))
    config = {"INFERENCE_PRECISION_HINT": "f32" if precision == "fp32" else "bf16",
              "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}  # fmt: skip
    return ov.Core().compile_model(model, "CPU", config)


def make_runner(
    model: nn.Module,
    backend: str,
    x: torch.Tensor,
    threads: int,
    precision: str = "fp32",
    reparameterize: bool = True,
    channels_last: bool = False,
) -> Callable[[], Any]:
    """A zero-argument callable running one inference of ``model`` on ``x`` with ``backend``.

    The callable has already run once (compiled, sessions created), so it is ready to be timed. ``threads``
    sets torch's intra-op threads for eager/compile, and the runtime's thread count for the others.
    """
    from starquad.deploy import onnx_bytes, ort_session, prepare_for_inference

    _check(backend, precision)
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    if reparameterize:  # StarNet's merged branches pay in PyTorch, not in ONNX runtimes (see prepare_for_inference)
        model = prepare_for_inference(model, merge_branches=backend in ("eager", "compile"))
    else:  # a copy all the same: eval() and channels-last must not touch the caller's model
        model = copy.deepcopy(model).eval()
    if backend in ("eager", "compile"):
        torch.set_num_threads(threads)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        fn = torch.compile(model) if backend == "compile" else model
        autocast = precision == "bf16"

        def run():
            with torch.inference_mode(), torch.autocast(x.device.type, torch.bfloat16, enabled=autocast):
                return fn(x)

        if backend == "compile":  # the first call compiles, with weights frozen into constants
            import torch._inductor.config as inductor_config

            warm = inductor_config.patch(freezing=True)
        else:
            warm = contextlib.nullcontext()
        with warm:
            run()
        return run
    data = onnx_bytes(model, x)
    feed = x.numpy()
    if backend == "onnxruntime":
        session = ort_session(data, threads)
        name = session.get_inputs()[0].name

        def run():
            return session.run(None, {name: feed})

    else:
        request = _openvino_compiled(data, threads, precision).create_infer_request()

        def run():
            return request.infer({0: feed})

    run()
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
    _check(backend, precision)
    best = 0.0
    for n in sizes:
        gen = torch.Generator().manual_seed(n)
        a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
        if backend in ("eager", "compile"):  # a GEMM is one library call; compiling it changes nothing
            torch.set_num_threads(threads)
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            a, b = a.to(dtype), b.to(dtype)
            fn = lambda a=a, b=b: torch.mm(a, b)  # noqa: E731
        elif backend == "onnxruntime":
            from starquad.deploy import ort_session

            session = ort_session(_matmul_onnx(), threads)
            feed = {"a": a.numpy(), "b": b.numpy()}
            fn = lambda s=session, f=feed: s.run(None, f)  # noqa: E731
        else:
            request = _openvino_compiled(_matmul_onnx(), threads, precision).create_infer_request()
            feed = {0: a.numpy(), 1: b.numpy()}
            fn = lambda r=request, f=feed: r.infer(f)  # noqa: E731
        stats = time_call(fn, warmup=2, runs=runs)
        best = max(best, 2 * n**3 / (stats.median_ms * 1e-3) / 1e9)
    return best


def as_numpy(out: Any) -> np.ndarray:
    """The first output of any backend's runner as a numpy array."""
    if isinstance(out, torch.Tensor):
        return out.float().numpy()
    if isinstance(out, (list, tuple)):
        return np.asarray(out[0])
    return np.asarray(next(iter(out.values())))  # openvino's result mapping
