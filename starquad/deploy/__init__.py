"""Turning trained models into inference artefacts: re-parameterisation, BatchNorm and LayerNorm folding, verified
ONNX export, AOTInductor (``.pt2``) packages and int8.

Names resolve lazily (:mod:`starquad._lazy`): ``starquad.deploy.config`` is importable without torch."""

from starquad._lazy import lazy_exports

_EXPORTS = {
    **{name: "starquad.deploy.fold" for name in ("fold_batchnorm", "prepare_for_inference")},
    **{name: "starquad.deploy.onnx" for name in ("ExportError", "ExportResult", "export_onnx", "onnx_bytes",
                                                  "ort_session", "verify_onnx")},
    **{name: "starquad.deploy.pt2" for name in ("export_pt2", "load_pt2", "pt2_bytes")},
}  # fmt: skip
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
