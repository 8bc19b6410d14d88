"""Lazy package attributes (PEP 562): ``starquad.create_model`` imports its module on first use.

The packages re-export their public names this way so that importing a light module (the CLI's parser,
``starquad.train.config``, ``starquad.errors``) does not pull in torch and timm: ``starquad --help``
answers in a fraction of a second instead of the ~3 s that importing torch takes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, resolving each name of ``exports`` (name → module) on demand."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
