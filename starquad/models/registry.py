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
import functools
import sys
from collections.abc import Callable
from functools import partial
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
    "register_resolver",
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
    """Register ``fn`` in timm through a wrapper that accepts timm's create_model arguments.

    timm files a model under the last part of its entrypoint's module name, so the wrapper lives in a
    per-family module (:func:`starquad.models._timm_bridge.family_module`): ``timm.list_models(module='quadranet')``
    then lists our QuadraNets, as it lists timm's own families.
    """
    from timm.models import register_model as timm_register

    from starquad.models import _timm_bridge

    name = fn.__name__
    family = fn.__module__.rsplit(".", 1)[-1]
    home = _timm_bridge.family_module(family)

    def entrypoint(pretrained: bool = False, pretrained_cfg=None, pretrained_cfg_overlay=None, **kwargs):
        return _build(fn, name, pretrained, pretrained_cfg_overlay, kwargs.pop("checkpoint_path", None), kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = home.__name__
    entrypoint.__doc__ = fn.__doc__
    family_cfg = getattr(sys.modules[fn.__module__], "default_cfgs", {}).get(name)
    if family_cfg is not None:
        home.default_cfgs[name] = timm_pretrained_cfg(family_cfg)
    timm_register(entrypoint)


# Name resolvers: how a family above the registry takes names that are not entrypoints (the search registers
# 'nas' and a searched architecture's 'run/arch.json' this way). Families outside starquad.models are found
# through the 'starquad.models' entry-point group on the first name the registry does not know.
Resolver = Callable[[str], "Callable[..., nn.Module] | None"]
_resolvers: list[Resolver] = []
PLUGIN_GROUP = "starquad.models"


def register_resolver(fn: Resolver) -> Resolver:
    """Register a name resolver (decorator): ``fn(name)`` returns the entrypoint that builds ``name`` (its
    arguments bound, e.g. ``functools.partial(build_nas, arch=name)``), or None for a name it does not take.
    Consulted, in registration order, for a name no family registered with :func:`register_model`."""
    if fn not in _resolvers:
        _resolvers.append(fn)
    return fn


@functools.cache
def _load_plugins() -> None:
    """Import the modules of the ``starquad.models`` entry-point group once (each registers what it builds)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        ep.load()


def _resolve(name: str) -> Callable[..., nn.Module] | None:
    """The entrypoint for ``name``: a registered family model, else the first resolver that takes it."""
    if name in _entrypoints:
        return _entrypoints[name]
    _load_plugins()
    if name in _entrypoints:
        return _entrypoints[name]
    for resolver in _resolvers:
        fn = resolver(name)
        if fn is not None:
            return fn
    return None


def _build(fn: Callable[..., nn.Module], name: str, pretrained: bool, overlay: dict[str, Any] | None,
           checkpoint_path: str | None, kwargs: dict[str, Any]) -> nn.Module:  # fmt: skip
    """Build a starquad model; weights come from a local file only: ``checkpoint_path``, or timm's
    ``pretrained=True, pretrained_cfg_overlay=dict(file=PATH)``. Nothing is ever downloaded."""
    from starquad.models.checkpoint import load_checkpoint

    local = (overlay or {}).get("file")
    if pretrained and not local:
        raise ConfigError(f"{name}: starquad never downloads weights; pass pretrained_cfg_overlay=dict(file=PATH) or "
                          "checkpoint_path=PATH for a local file")  # fmt: skip
    model = _call_entrypoint(fn, name, kwargs)
    for path in (local if pretrained else None, checkpoint_path):
        if path:
            load_checkpoint(model, path)
    return model


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
    resolved = _resolve(name)
    if resolved is not None:  # a resolver's name (a searched architecture): its model's cfg (building is cheap)
        return dict(getattr(resolved(), "pretrained_cfg", {}) or {})
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


def create_model(name: str, pretrained: bool = False, checkpoint_path: str | None = None,
                 pretrained_cfg_overlay: dict[str, Any] | None = None, **kwargs) -> nn.Module:  # fmt: skip
    """Build a model by name: a starquad model, else a timm model (``timm:NAME`` forces timm).

    Weights are never downloaded. Local weights load as in timm: ``checkpoint_path=PATH``, or
    ``pretrained=True, pretrained_cfg_overlay=dict(file=PATH)``; both go through
    :func:`starquad.load_checkpoint` (safetensors or weights-only pickle; the authors' layouts map).

    Args:
        name: registered model name.
        pretrained: only with ``pretrained_cfg_overlay=dict(file=...)``.
        checkpoint_path: a local weights file to load after building.
        pretrained_cfg_overlay: timm's overlay; its ``file`` names the local weights.
        **kwargs: passed to the entrypoint (``num_classes``, ``in_chans``, ``drop_path_rate``, …).
    """
    fn = _resolve(name)
    if fn is not None:
        _check_kwargs(name, kwargs)
        return _build(fn, name, pretrained, pretrained_cfg_overlay, checkpoint_path, kwargs)
    timm_name = name.removeprefix(TIMM_PREFIX)
    if timm.is_model(timm_name):
        return _build(partial(timm.create_model, timm_name, pretrained=False), name, pretrained,
                      pretrained_cfg_overlay, checkpoint_path, kwargs)  # fmt: skip
    raise UnknownModelError(_unknown_message(name))


# Common model options and what they must be; checked before building so a bad value is named instead of
# failing deep inside torch (a negative depth, width 0, drop_rate 'high').
_INT_AT_LEAST = {"num_classes": 0, "in_chans": 1, "base_dim": 1, "width": 1, "depth": 1, "stem_chs": 1,
                 "stem_stride": 1, "patch_size": 1, "kernel_size": 1, "order": 1}  # fmt: skip
_RATES = ("drop_rate", "drop_path_rate")


def _check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    for key, low in _INT_AT_LEAST.items():
        value = kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigError(f"{name}: {key} must be an integer >= {low}, got {value!r}")
    for key in _RATES:
        value = kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1):
            raise ConfigError(f"{name}: {key} must be a number in [0, 1), got {value!r}")
    if "depths" in kwargs:
        depths = kwargs["depths"]
        if (not isinstance(depths, (list, tuple)) or not depths
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in depths)):  # fmt: skip
            raise ConfigError(f"{name}: depths must be a list of block counts >= 0, one per stage, got {depths!r}")
    ratio = kwargs.get("mlp_ratio")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0):
        raise ConfigError(f"{name}: mlp_ratio must be a number > 0, got {ratio!r}")


def _call_entrypoint(fn: Callable[..., nn.Module], name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        return fn(**kwargs)
    except TypeError as e:
        if "argument" not in str(e):  # not a signature mismatch: a real bug, keep the traceback
            raise
        raise ConfigError(f"{name} does not take these options: {e} (options given: {', '.join(kwargs) or 'none'})"
                          ) from e


def _unknown_message(name: str) -> str:
    ours = sorted(_entrypoints)
    candidates = list(dict.fromkeys(ours + timm.list_models()))  # ours are in timm's list too: no repeats
    close = difflib.get_close_matches(name.removeprefix(TIMM_PREFIX), candidates, n=5, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}?" if close else "run 'starquad models' to list the models"
    return f"unknown model '{name}' (not a starquad or timm model); {hint}"
