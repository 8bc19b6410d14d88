"""Turning trained models into inference artefacts: re-parameterisation, BatchNorm folding, verified ONNX export."""

from starquad.deploy.fold import fold_batchnorm, prepare_for_inference
from starquad.deploy.onnx import ExportError, ExportResult, export_onnx, onnx_bytes, ort_session, verify_onnx

__all__ = [
    "ExportError",
    "ExportResult",
    "export_onnx",
    "fold_batchnorm",
    "onnx_bytes",
    "ort_session",
    "prepare_for_inference",
    "verify_onnx",
]
