"""The search's models in the registry: ``create_model('nas', arch='run/arch.json')``, or the file's path as the
model name (so every command that takes a model name takes a search's ``arch.json``).

Registered through the registry's resolver hook when this module is imported; the ``starquad.models`` entry
point in ``pyproject.toml`` imports it on the first name the registry does not know."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from starquad.errors import ConfigError
from starquad.models.registry import register_resolver

__all__ = ["NAS_MODEL", "nas"]

NAS_MODEL = "nas"


def nas(pretrained: bool = False, arch: str | os.PathLike | None = None, **kwargs: Any) -> nn.Module:
    """A searched architecture, built from the ``arch.json`` a search wrote."""
    from starquad.nas.space import build, load_arch

    if arch is None:
        raise ConfigError("model 'nas' needs arch=PATH: the arch.json a search wrote (starquad nas search)")
    space, choices = load_arch(arch)
    return build(space, choices, **kwargs)


@register_resolver
def _resolve(name: str) -> Callable[..., nn.Module] | None:
    if name == NAS_MODEL:
        return nas
    if name.endswith(".json"):
        return functools.partial(nas, arch=name)
    return None
