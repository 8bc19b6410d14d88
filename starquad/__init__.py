"""starquad: high-order interaction networks — the star operation / StarNet and quadratic neurons / QuadraNet.

Entry points: :func:`create_model` / :func:`list_models` (starquad's families, falling through to
timm), :func:`starquad.data.build_dataset`, and the ``starquad`` command line.

``import starquad`` registers the QuadraNet, HorNet and DemoNet families in timm's registry (names timm
does not have; nothing of timm's is replaced), so ``timm.create_model('quadranet_t25')`` works after it.
The ``starquad`` command skips that import until a command needs a model, so ``starquad --help`` does not
wait for torch.
"""

import os
import sys

from starquad._lazy import lazy_exports
from starquad.errors import ConfigError, DatasetError, StarquadError, UnknownModelError

__version__ = "0.1.0"

_EXPORTS = {name: "starquad.models" for name in ("create_model", "get_model_cfg", "is_model", "list_models",
                                                  "load_checkpoint", "register_model")}  # fmt: skip
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ConfigError",
    "DatasetError",
    "StarquadError",
    "UnknownModelError",
    "__version__",
    "create_model",
    "get_model_cfg",
    "is_model",
    "list_models",
    "load_checkpoint",
    "register_model",
]

if os.path.basename(sys.argv[0] if sys.argv else "") != "starquad":  # the console script imports lazily
    from starquad import models  # noqa: F401  (registers our families in timm)
