"""Turning trained models into inference artefacts: BatchNorm folding (and, later, ONNX export)."""

from starquad.deploy.fold import fold_batchnorm

__all__ = ["fold_batchnorm"]
