"""Hardware-aware architecture search (QuadraNet §NAS): search spaces as data, and models built from them.

Names resolve lazily (:mod:`starquad._lazy`)."""

from starquad._lazy import lazy_exports

_EXPORTS = {name: "starquad.nas.space" for name in ("SPACES", "Candidate", "LayerOp", "SearchSpace", "build",
                                                    "get_space", "layer_ops", "load_arch", "random_arch",
                                                    "save_arch")}  # fmt: skip
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
