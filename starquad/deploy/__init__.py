"""Turning trained models into inference artefacts: re-parameterisation, BatchNorm folding, verified ONNX export
and AOTInductor (``.pt2``) packages."""

from starquad.deploy.fold import fold_batchnorm, prepare_for_inference
from starquad.deploy.onnx import ExportError, ExportResult, export_onnx, onnx_bytes, ort_session, verify_onnx
from starquad.deploy.pt2 import export_pt2, load_pt2, pt2_bytes

__all__ = [
    "ExportError",
    "ExportResult",
    "export_onnx",
    "export_pt2",
    "fold_batchnorm",
    "load_pt2",
    "onnx_bytes",
    "ort_session",
    "prepare_for_inference",
    "pt2_bytes",
    "verify_onnx",
]
