"""Optional dependencies: the core install (``pip install starquad``) builds, trains, benchmarks in PyTorch and
searches; each heavier capability comes with an extra, and using it without the extra says which to install.

============  =============================================================================================
``deploy``    ONNX export, ONNX Runtime, OpenVINO, int8 (onnx, onnxscript, onnxruntime, openvino, nncf)
``report``    ``starquad reproduce``, plots, statistics, the scikit-learn datasets (scikit-learn, scipy,
              matplotlib)
``ray``       trainings and trials on a Ray cluster (``--ray``)
============  =============================================================================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

from starquad.errors import StarquadError

__all__ = ["EXTRA_OF", "MissingExtraError", "install_hint", "installed", "require"]

# importable module -> (the distribution that provides it, the extra that brings it)
EXTRA_OF: dict[str, tuple[str, str]] = {
    "onnx": ("onnx", "deploy"), "onnxscript": ("onnxscript", "deploy"), "onnxruntime": ("onnxruntime", "deploy"),
    "openvino": ("openvino", "deploy"), "nncf": ("nncf", "deploy"), "sklearn": ("scikit-learn", "report"),
    "scipy": ("scipy", "report"), "matplotlib": ("matplotlib", "report"), "ray": ("ray[tune]", "ray"),
}  # fmt: skip


class MissingExtraError(StarquadError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` that brings it."""


def install_hint(module: str, what: str) -> str:
    """``'<what> needs <dist>, which is not installed: pip install 'starquad[<extra>]''``."""
    dist, extra = EXTRA_OF.get(module.split(".")[0], (module.split(".")[0], None))
    fix = f"pip install 'starquad[{extra}]'" if extra else f"pip install {dist}"
    return f"{what} needs {dist}, which is not installed: {fix}"


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` (e.g. ``'onnxruntime.quantization'``) for ``what`` (e.g. ``'int8 export'``), or raise
    :class:`MissingExtraError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(install_hint(module, what)) from e


def installed(module: str) -> bool:
    """Whether ``module`` imports (for what is drawn only when it can be, like a training's ``curves.png``)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
