"""Homes in timm's registry for the starquad families registered there (``also_in_timm=True``).

timm files a model under the last part of its entrypoint's module name and reads ``default_cfgs`` from
that module. Our family modules carry extra cfg fields (``paper_metrics``) that timm's ``PretrainedCfg``
does not know, so each family gets a small module of its own here, ``starquad.models._timm_bridge.<family>``,
holding the timm-compatible part of its cfgs and the thin entrypoint wrappers timm calls. Only names timm
does not already have are registered: importing starquad never replaces a timm model.
"""

from __future__ import annotations

import sys
import types

__all__ = ["family_module"]


def family_module(family: str) -> types.ModuleType:
    """The bridge module for ``family`` (e.g. ``'quadranet'``), made on first use."""
    name = f"{__name__}.{family}"
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name, f"timm's home of starquad's {family} models (see {__name__}).")
        module.default_cfgs = {}
        module.__all__ = []
        sys.modules[name] = module
    return module
