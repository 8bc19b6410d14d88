"""Model families built from :mod:`starquad.ops`, and the registry that names them."""

from starquad.models import baselines, demonet, hornet, quadranet, starnet  # noqa: F401  (register their models)
from starquad.models.checkpoint import CheckpointError, load_checkpoint
from starquad.models.registry import (
    create_model,
    get_model_cfg,
    is_model,
    list_models,
    model_entrypoint,
    register_model,
)

__all__ = [
    "CheckpointError",
    "create_model",
    "get_model_cfg",
    "is_model",
    "list_models",
    "load_checkpoint",
    "model_entrypoint",
    "register_model",
]
