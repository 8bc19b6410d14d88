"""Model families built from :mod:`starquad.ops`, and the registry that names them."""

from starquad.models.registry import create_model, is_model, list_models, model_entrypoint, register_model

__all__ = ["create_model", "is_model", "list_models", "model_entrypoint", "register_model"]
