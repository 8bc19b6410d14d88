"""starquad: high-order interaction networks — the star operation / StarNet and quadratic neurons / QuadraNet.

Entry points: :func:`create_model` / :func:`list_models` (starquad's families, falling through to
timm), :func:`starquad.data.build_dataset`, and the ``starquad`` command line.
"""

from starquad.errors import ConfigError, DatasetError, StarquadError, UnknownModelError
from starquad.models import create_model, get_model_cfg, is_model, list_models, load_checkpoint, register_model

__version__ = "0.1.0"

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
