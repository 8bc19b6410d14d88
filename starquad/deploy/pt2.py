"""The PyTorch deploy path: an AOTInductor package (``.pt2``) that loads and runs without starquad's source.

:func:`pt2_bytes` prepares the model for inference (:func:`~starquad.deploy.fold.prepare_for_inference`:
re-parameterisation, BatchNorm folding and StarNet's branch merge, which pays in PyTorch), captures it with
``torch.export``, and compiles it ahead of time with Inductor (``torch._inductor.aoti_compile_and_package``)
with **freezing** (weights become constants, so Inductor folds and pre-packs them for oneDNN's convolutions and
GEMMs). The package holds the compiled kernels and the weights; anyone with PyTorch runs it with
``torch._inductor.aoti_load_package(path)(x)``. :func:`export_pt2` verifies it like the ONNX export: it must
reproduce the eager model within ``atol`` or nothing is written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

from starquad.deploy.fold import prepare_for_inference
from starquad.deploy.onnx import ExportResult, quiet
from starquad.deploy.verify import ExportError, verified_export
from starquad.io import atomic_write

__all__ = ["PT2_OPTIONS", "export_pt2", "load_pt2", "pt2_bytes"]

# Inductor options of the package: freezing turns the weights into constants (folded, pre-packed for oneDNN).
PT2_OPTIONS = {"freezing": True}


def _quiet():
    return quiet("torch._inductor", "torch._dynamo", "torch.export", "torch.utils.cpp_extension", stdout=True)


def pt2_bytes(model: nn.Module, example: torch.Tensor) -> bytes:
    """The AOTInductor package of ``model(example)`` (fixed input shape) as bytes; ``model`` is compiled as it is."""
    model.eval()
    with tempfile.TemporaryDirectory() as tmp, _quiet(), torch.no_grad():
        try:
            program = torch.export.export(model, (example,))
            path = torch._inductor.aoti_compile_and_package(program, package_path=str(Path(tmp) / "model.pt2"),
                                                            inductor_configs=dict(PT2_OPTIONS))  # fmt: skip
        except Exception as e:
            raise ExportError(f"AOTInductor could not compile {type(model).__name__}: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from e  # fmt: skip
        return Path(path).read_bytes()


def load_pt2(package: str | os.PathLike | bytes):
    """A callable ``x -> output`` from a ``.pt2`` package (a path, or the bytes of one)."""
    if isinstance(package, bytes):
        with tempfile.NamedTemporaryFile(suffix=".pt2") as f:
            f.write(package)
            f.flush()
            with _quiet():
                return torch._inductor.aoti_load_package(f.name)
    with _quiet():
        return torch._inductor.aoti_load_package(str(package))


def export_pt2(model: nn.Module, path: str | os.PathLike, input_size: Sequence[int] = (3, 224, 224), batch: int = 1,
               prepare: bool = True, atol: float = 1e-4, seed: int = 0) -> ExportResult:  # fmt: skip
    """Compile ``model`` into one ``.pt2`` package at ``path`` and verify it against the eager model.

    Args:
        model: the model (left unchanged; the export works on a prepared copy).
        path: output file (``.pt2``), written atomically.
        input_size: ``(C, H, W)`` of one sample; the package is compiled for ``(batch, C, H, W)``.
        batch: the batch size it is compiled for.
        prepare: re-parameterise, fold BatchNorm and merge StarNet's branches first.
        atol: largest allowed absolute difference between the package's and the eager model's outputs.
        seed: seed of the random verification input.

    Raises:
        ExportError: compilation failed, or the outputs differ by more than ``atol`` (nothing is written).
    """
    if len(input_size) != 3 or min(input_size) < 1 or batch < 1:
        raise ExportError(f"need input_size (C, H, W) with positive sides and batch >= 1, got {tuple(input_size)}, "
                          f"batch {batch}")  # fmt: skip
    model = model.eval()
    x = torch.randn(batch, *input_size, generator=torch.Generator().manual_seed(seed))

    def export(m: nn.Module) -> bytes:
        return pt2_bytes(prepare_for_inference(m, merge_branches=True) if prepare else m, x)

    def difference(data: bytes, reference: nn.Module) -> float:
        with torch.inference_mode():
            got, expected = load_pt2(data)(x), reference(x)
        if got.shape != expected.shape:
            raise ExportError(f"the package's output has shape {tuple(got.shape)}, PyTorch's {tuple(expected.shape)}")
        return float((got - expected).abs().max())

    checked = verified_export(model, export, difference, atol, "the .pt2 package's")
    out = atomic_write(path, checked.data)
    return ExportResult(out, checked.max_abs_diff, atol, tuple(input_size), False, len(checked.data),
                        checked.probe_max_abs_diff)  # fmt: skip
