"""One checkpoint loader for every family: :func:`load_checkpoint`.

Accepts the authors' ``.pth.tar`` (``{'state_dict': ...}``), a bare state dict, one wrapped under
``model`` / ``model_ema`` (ConvNeXt/HorNet lineage), a timm state dict, or a ``.safetensors`` file.
Pickle files are read with ``torch.load(weights_only=True)`` (no code runs). ``module.`` (DDP) and
``_orig_mod.`` (``torch.compile``) prefixes are stripped, then the family's ``checkpoint_filter_fn``
(in the model's module, as in timm)
maps foreign key layouts onto ours.
"""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn

from starquad.errors import StarquadError

__all__ = ["CheckpointError", "LoadResult", "load_checkpoint", "load_state_checked", "read_state_dict"]

_WRAPPERS = ("state_dict", "model", "module")
_PREFIXES = ("module.", "_orig_mod.")  # DDP, torch.compile (in either order)


def read_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged safetensors or torch file raises (torch, pickle, zip and safetensors errors)."""
    from safetensors import SafetensorError

    return (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError, SafetensorError)


def describe_read_error(path: Path, error: BaseException) -> str:
    """One short line for a file that would not load: what it looks like, and the loader's first sentence."""
    text = " ".join(str(error).split())
    if text.startswith("Weights only load failed"):  # torch's multi-paragraph weights_only message
        if not zipfile.is_zipfile(path):
            return f"{path}: cannot read checkpoint: not a torch (zip) or safetensors file — truncated or corrupt?"
        return (f"{path}: cannot read checkpoint: it holds Python objects besides tensors, and starquad loads "
                "weights only (torch.load(weights_only=True)); re-save its state_dict")  # fmt: skip
    return f"{path}: cannot read checkpoint (truncated or corrupt?): {text[:160]}"


def _strip_prefixes(key: str) -> str:
    while key.startswith(_PREFIXES):
        for prefix in _PREFIXES:
            key = key.removeprefix(prefix)
    return key


class CheckpointError(StarquadError, ValueError):
    """A checkpoint file is missing, truncated, corrupt, or does not fit the model."""


class LoadResult(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def read_state_dict(path: str | os.PathLike, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """Read the tensors of a checkpoint file (safetensors or a weights-only torch pickle), unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except read_errors() as e:
        raise CheckpointError(describe_read_error(path, e)) from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    if use_ema:
        for key in ("model_ema", "state_dict_ema"):
            if key in obj:
                obj = obj[key]
                break
        else:
            raise CheckpointError(f"{path}: use_ema=True but the file has no model_ema / state_dict_ema entry")
    for key in _WRAPPERS:  # the first wrapper that holds a dict wins
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    tensors = {_strip_prefixes(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path}: no tensors found (keys: {', '.join(list(obj)[:8])})")
    return tensors


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike, strict: bool = True, use_ema: bool = False
) -> LoadResult:
    """Load a checkpoint file into ``model`` (any starquad family, or a timm model).

    Args:
        model: the model to fill.
        path: ``.pth``/``.pth.tar``/``.pt`` (weights-only pickle) or ``.safetensors``.
        strict: raise when keys are missing or unexpected (shape mismatches always raise).
        use_ema: load the EMA weights of a training checkpoint.

    Returns:
        The missing and unexpected keys (empty when ``strict``).

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not fit, listing the first offenders.
    """
    state = read_state_dict(path, use_ema=use_ema)
    filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    return load_state_checked(model, state, str(path), strict=strict)


def load_state_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str,
                       strict: bool = True) -> LoadResult:  # fmt: skip
    """``model.load_state_dict(state)`` with a short error naming ``source`` and the first offending keys
    (torch's own message lists every key: tens of thousands of characters for a model of another size)."""
    own = model.state_dict()
    bad_shapes = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items() if k in own
                  and v.shape != own[k].shape]  # fmt: skip
    if bad_shapes:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {len(bad_shapes)} shape mismatch(es), "
                              f"e.g. {'; '.join(bad_shapes[:3])} (weights of another model or variant?)")  # fmt: skip
    non_finite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if non_finite:
        raise CheckpointError(f"{source} holds NaN or Inf weights in {len(non_finite)} tensor(s), e.g. "
                              f"{', '.join(non_finite[:3])}: the training that wrote it diverged; load an earlier "
                              "checkpoint")  # fmt: skip
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {'; '.join(parts)} keys")
    model.load_state_dict(state, strict=False)
    return LoadResult(missing, unexpected)
