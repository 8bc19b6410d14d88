"""ONNX export with verification, and the ONNX Runtime session settings every benchmark shares.

:func:`export_onnx` prepares the model for inference (:func:`~starquad.deploy.fold.prepare_for_inference`:
re-parameterisation and BatchNorm folding; StarNet's two branches stay apart, which ONNX Runtime runs
faster), exports it with torch's current exporter (``torch.onnx.export(..., dynamo=True)``) into one
self-contained file, and checks it: the file runs in ONNX Runtime and its outputs must match PyTorch's (the
unfolded model's) within ``atol``; an untrained model's is checked again with non-trivial layer scales
(:mod:`starquad.deploy.verify`). The file is written atomically, so a failed export never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from starquad.deploy.fold import prepare_for_inference
from starquad.deploy.verify import ExportError, verified_export
from starquad.extras import require
from starquad.io import atomic_write

__all__ = ["ExportError", "ExportResult", "export_onnx", "onnx_bytes", "ort_session", "quiet", "verify_onnx"]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float
    atol: float
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    size_bytes: int
    probe_max_abs_diff: float | None = None  # the check with non-trivial layer scales (starquad.deploy.verify)


_EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "onnxscript", "onnx_ir", "torch._dynamo")


@contextlib.contextmanager
def quiet(*names: str, stdout: bool = False):
    """Tools that print progress lines and advice meant for their developers (the exporters, the quantizers, the
    compiler): while the block runs, the loggers ``names`` (``''``: the root logger) report errors only, warnings
    are off and stdout is swallowed (unless ``stdout``)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()) if not stdout \
                else contextlib.nullcontext():  # fmt: skip
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def onnx_bytes(model: nn.Module, example: torch.Tensor, dynamic_batch: bool = False,
               opset: int | None = None) -> bytes:  # fmt: skip
    """The ONNX file for ``model(example)`` as bytes (one file: weights embedded), exported as it is."""
    for module in ("onnx", "onnxscript"):  # torch's ONNX exporter needs both
        require(module, "ONNX export")
    model.eval()
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    if dynamic_batch and example.shape[0] == 1:  # torch.export specialises a size-1 dimension: trace at batch 2
        example = example.expand(2, *example.shape[1:]).contiguous()
    with tempfile.TemporaryDirectory() as tmp, quiet(*_EXPORTER_LOGGERS):
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(model, (example,), path, dynamo=True, external_data=False, optimize=True,
                              dynamic_shapes=dynamic_shapes, opset_version=opset, input_names=["input"],
                              output_names=["output"])  # fmt: skip
        except Exception as e:
            raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {type(e).__name__}: {e}") from e
        return _fold_weight_subgraphs(path.read_bytes())


# The exporter folds constant subgraphs of at most 8,192 input elements; larger weights reach the graph as an
# initializer followed by Reshape/Gather (a quadratic conv's branch weights: QuadraNet-T25 had 76 such Gathers and
# 102 Reshapes, 649 nodes in all, 474 after folding). ONNX Runtime folds them when it loads the file, but the
# quantizers do not: onnxruntime.quantization then sees activations instead of conv weights (no per-channel int8
# weights) and NNCF fails on the graph. So every subgraph computed from initializers alone is folded here.
_NO_LIMIT = 1 << 40


def _fold_weight_subgraphs(data: bytes) -> bytes:
    import onnx
    import onnxscript.optimizer

    model = onnxscript.optimizer.optimize(onnx.load_from_string(data), input_size_limit=_NO_LIMIT,
                                          output_size_limit=_NO_LIMIT)  # fmt: skip
    return model.SerializeToString()


def ort_session(model: str | os.PathLike | bytes, threads: int = 1, optimize: bool = True):
    """An ONNX Runtime CPU session: ``ORT_ENABLE_ALL``, ``threads`` intra-op threads, 1 inter-op, sequential."""
    ort = require("onnxruntime", "ONNX Runtime")

    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=so, providers=["CPUExecutionProvider"])


def verify_onnx(model_file: str | os.PathLike | bytes, reference: nn.Module, inputs: Sequence[torch.Tensor],
                threads: int = 1) -> float:  # fmt: skip
    """Largest absolute difference between ONNX Runtime's and PyTorch's outputs over ``inputs``."""
    session = ort_session(model_file, threads)
    name = session.get_inputs()[0].name
    reference.eval()
    worst = 0.0
    for x in inputs:
        with torch.inference_mode():
            expected = reference(x).float().numpy()
        got = session.run(None, {name: x.numpy()})[0]
        if got.shape != expected.shape:
            raise ExportError(f"ONNX output has shape {got.shape}, PyTorch's has {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    input_size: Sequence[int] = (3, 224, 224),
    dynamic_batch: bool = False,
    prepare: bool = True,
    atol: float = 1e-4,
    seed: int = 0,
) -> ExportResult:
    """Export ``model`` to one ONNX file at ``path`` and verify it in ONNX Runtime.

    Args:
        model: the model (left unchanged; the export works on a prepared copy).
        path: output file (``.onnx``), written atomically.
        input_size: ``(C, H, W)`` of one sample.
        dynamic_batch: a symbolic batch dimension (verified at batch 1 and 3) instead of batch 1.
        prepare: re-parameterise and fold BatchNorm first (:func:`prepare_for_inference`).
        atol: largest allowed absolute difference between ONNX Runtime and PyTorch outputs (also for the check
            with non-trivial layer scales that an untrained model gets, :mod:`starquad.deploy.verify`).
        seed: seed of the random verification inputs.

    Raises:
        ExportError: the exporter failed, or the outputs differ by more than ``atol`` (nothing is written).
    """
    if len(input_size) != 3 or min(input_size) < 1:
        raise ExportError(f"input_size must be (C, H, W) with positive sides, got {tuple(input_size)}")
    model = model.eval()
    gen = torch.Generator().manual_seed(seed)
    batches = (1, 3) if dynamic_batch else (1,)
    inputs = [torch.randn(b, *input_size, generator=gen) for b in batches]

    def export(m: nn.Module) -> bytes:
        return onnx_bytes(prepare_for_inference(m, merge_branches=False) if prepare else m, inputs[0],
                          dynamic_batch=dynamic_batch)  # fmt: skip

    checked = verified_export(model, export, lambda data, m: verify_onnx(data, m, inputs), atol, "ONNX Runtime")
    out = atomic_write(path, checked.data)
    return ExportResult(out, checked.max_abs_diff, atol, tuple(input_size), dynamic_batch, len(checked.data),
                        checked.probe_max_abs_diff)  # fmt: skip
