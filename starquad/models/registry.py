"""The starquad model registry: our families first, timm for everything else.

Our model families register their entrypoints here with :func:`register_model`. Names that are not
ours fall through to :func:`timm.create_model`, so any timm peer (``resnet18``, ``mobileone_s0``, …)
is available under the same call. Where a name exists in both (StarNet is in timm too), ours wins;
``timm:NAME`` always asks timm.

Registering here never touches timm's registry unless a family asks for it explicitly with
``also_in_timm=True`` — and even then only for names that timm does not have, so importing starquad
can never replace a timm model.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import sys
from collections.abc import Callable
from typing import Any

import timm
import torch.nn as nn
from timm.models import PretrainedCfg

from starquad.errors import ConfigError, UnknownModelError

__all__ = [
    "build_staged_model",
    "create_model",
    "get_model_cfg",
    "imagenet_cfg",
    "is_model",
    "list_models",
    "model_entrypoint",
    "register_model",
    "timm_pretrained_cfg",
]

TIMM_PREFIX = "timm:"

_entrypoints: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module] | None = None, *, also_in_timm: bool = False):
    """Register a model entrypoint under its function name (decorator, like timm's).

    Args:
        fn: entrypoint ``fn(pretrained=False, **kwargs) -> nn.Module``.
        also_in_timm: also register it in timm's registry so ``timm.create_model`` finds it. Refused
            for a name timm already has: starquad never replaces a timm model.
    """

    def _register(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = f.__name__
        if name in _entrypoints and _entrypoints[name] is not f:
            raise ValueError(f"starquad model '{name}' is registered twice")
        if also_in_timm:
            if timm.is_model(name):
                raise ValueError(f"'{name}' already exists in timm's registry; starquad will not replace it")
            _register_in_timm(f)
        _entrypoints[name] = f
        return f

    return _register(fn) if fn is not None else _register


def _register_in_timm(fn: Callable[..., nn.Module]) -> None:
    """Register ``fn`` in timm through a wrapper that accepts timm's create_model arguments."""
    from timm.models import register_model as timm_register

    from starquad.models import _timm_bridge

    name = fn.__name__

    def entrypoint(pretrained: bool = False, pretrained_cfg=None, pretrained_cfg_overlay=None, **kwargs):
        if pretrained or pretrained_cfg is not None or pretrained_cfg_overlay:
            raise ConfigError(f"{name}: starquad never downloads weights; build it, then starquad.load_checkpoint()")
        return fn(**kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = _timm_bridge.__name__
    entrypoint.__doc__ = fn.__doc__
    family_cfg = getattr(sys.modules[fn.__module__], "default_cfgs", {}).get(name)
    if family_cfg is not None:
        _timm_bridge.default_cfgs[name] = timm_pretrained_cfg(family_cfg)
    timm_register(entrypoint)


def is_model(name: str) -> bool:
    """True when ``name`` is a starquad model (timm's are not counted)."""
    return name in _entrypoints


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The registered entrypoint of a starquad model."""
    if name not in _entrypoints:
        raise UnknownModelError(_unknown_message(name))
    return _entrypoints[name]


def list_models(pattern: str | None = None, include_timm: bool = False) -> list[str]:
    """Names of the registered models, sorted, optionally filtered by a shell-style pattern.

    Args:
        pattern: e.g. ``'starnet_*'``; a pattern without wildcards matches as a substring.
        include_timm: also list timm's models (those that starquad does not shadow), prefixed ``timm:``
            when they share a name with ours.
    """
    names = sorted(_entrypoints)
    if include_timm:
        names += [n if n not in _entrypoints else TIMM_PREFIX + n for n in timm.list_models()]
    if pattern:
        glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
        names = [n for n in names if fnmatch.fnmatch(n, glob)]
    return names


def get_model_cfg(name: str) -> dict[str, Any]:
    """A model's metadata: input size, mean/std, classifier, paper figures (``paper_metrics``) where known.

    For starquad models this is the family's ``default_cfgs`` entry; for timm models, timm's
    pretrained cfg.
    """
    if name in _entrypoints:
        fn = _entrypoints[name]
        return dict(getattr(sys.modules[fn.__module__], "default_cfgs", {}).get(name, {}))
    timm_name = name.removeprefix(TIMM_PREFIX)
    if timm.is_model(timm_name):
        cfg = timm.models.get_pretrained_cfg(timm_name)
        return cfg.to_dict() if cfg is not None else {}
    raise UnknownModelError(_unknown_message(name))


def imagenet_cfg(**kwargs: Any) -> dict[str, Any]:
    """A family cfg with timm's ImageNet-1k defaults (224², bicubic, crop 0.875, ImageNet mean/std, ``head``)."""
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7), "crop_pct": 0.875,
        "interpolation": "bicubic", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
        "classifier": "head", **kwargs,
    }  # fmt: skip


def build_staged_model(cls: type[nn.Module], variant: str, cfg: dict[str, Any], **kwargs: Any) -> nn.Module:
    """Build a four-stage family model through timm's ``build_model_with_cfg`` (so ``features_only=True``
    works, taking the stage outputs), with the timm-compatible part of its family ``cfg``; never pretrained."""
    from timm.models import build_model_with_cfg

    return build_model_with_cfg(
        cls,
        variant,
        pretrained=False,
        pretrained_cfg=timm_pretrained_cfg(cfg),
        feature_cfg=dict(out_indices=(0, 1, 2, 3), flatten_sequential=True),
        **kwargs,
    )


def timm_pretrained_cfg(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a family cfg that timm's ``PretrainedCfg`` knows (for ``build_model_with_cfg``)."""
    fields = {f.name for f in dataclasses.fields(PretrainedCfg)}
    return {k: v for k, v in cfg.items() if k in fields}


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a model by name: a starquad model, else a timm model (``timm:NAME`` forces timm).

    Weights are never downloaded: ``pretrained=True`` is refused; load a local file with
    :func:`starquad.load_checkpoint` instead.

    Args:
        name: registered model name.
        pretrained: must be False (kept for timm-compatible call sites).
        **kwargs: passed to the entrypoint (``num_classes``, ``in_chans``, ``drop_path_rate``, …).
    """
    if pretrained:
        raise ConfigError(
            "starquad never downloads weights (pretrained=True); build the model, then load a local file "
            "with starquad.load_checkpoint(model, path)"
        )
    if name in _entrypoints:
        return _entrypoints[name](**kwargs)
    timm_name = name.removeprefix(TIMM_PREFIX)
    if timm.is_model(timm_name):
        return timm.create_model(timm_name, pretrained=False, **kwargs)
    raise UnknownModelError(_unknown_message(name))


def _unknown_message(name: str) -> str:
    ours = sorted(_entrypoints)
    close = difflib.get_close_matches(name.removeprefix(TIMM_PREFIX), ours + timm.list_models(), n=5, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}?" if close else "run 'starquad models' to list the models"
    return f"unknown model '{name}' (not a starquad or timm model); {hint}"
