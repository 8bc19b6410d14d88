"""Run checkpoints that survive being killed at any moment.

A run directory holds ``last.safetensors`` (model weights), ``last.state.pt`` (optimizer, scheduler,
EMA weights, epoch, best top-1 — plain tensors and numbers, read with ``torch.load(weights_only=True)``)
and ``best.safetensors``. Every file is written atomically (:func:`starquad.io.atomic_write`).

The weights and the state are two files, so they cannot be replaced in one step. The state is the
commit point and records the SHA-256 of the weights it belongs to. Saving goes:

1. the current ``last.safetensors`` becomes ``prev.safetensors`` (a rename);
2. the new ``last.safetensors`` is written;
3. the new ``last.state.pt`` is written.

A kill between any two steps leaves a state whose weights are either ``last`` or ``prev``; loading
picks the one whose hash matches. A file whose hash matches nothing (truncated, corrupt, foreign) is
reported, never loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from starquad.io import atomic_write
from starquad.models.checkpoint import CheckpointError, describe_read_error, read_errors

__all__ = ["load_run_state", "save_best", "save_run_state", "weights_bytes"]

LAST, PREV, STATE, BEST = "last.safetensors", "prev.safetensors", "last.state.pt", "best.safetensors"


def weights_bytes(state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """A state dict as safetensors bytes (CPU, contiguous, no shared storage)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    return save_safetensors_bytes(tensors, metadata=metadata)


def save_run_state(run_dir: str | os.PathLike, model_state: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """Write the weights and the training state of a finished epoch (see the module docstring for the order)."""
    run_dir = Path(run_dir)
    payload = weights_bytes(model_state, {"epoch": str(state["epoch"])})
    if (run_dir / LAST).exists():
        os.replace(run_dir / LAST, run_dir / PREV)
    atomic_write(run_dir / LAST, payload)
    buffer = io.BytesIO()
    torch.save({**state, "weights_sha256": hashlib.sha256(payload).hexdigest()}, buffer)
    atomic_write(run_dir / STATE, buffer.getvalue())


def save_best(run_dir: str | os.PathLike, model_state: dict[str, torch.Tensor], epoch: int, top1: float) -> None:
    atomic_write(Path(run_dir) / BEST, weights_bytes(model_state, {"epoch": str(epoch), "top1": f"{top1:.4f}"}))


def load_run_state(run_dir: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and training state of the last completed epoch of a run directory.

    Raises:
        CheckpointError: no checkpoint, an unreadable state, or weights that match no recorded hash.
    """
    run_dir = Path(run_dir)
    state_path = run_dir / STATE
    if not state_path.is_file():
        raise CheckpointError(f"{run_dir}: no {STATE} to resume from (is this a starquad run directory?)")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except read_errors() as e:
        raise CheckpointError(f"unreadable training state: {describe_read_error(state_path, e)}") from e
    if not isinstance(state, dict) or "weights_sha256" not in state or "epoch" not in state:
        raise CheckpointError(f"{state_path}: not a starquad training state")
    tried = []
    for name in (LAST, PREV):
        path = run_dir / name
        if not path.is_file():
            continue
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() == state["weights_sha256"]:
            return load_safetensors_bytes(payload), state
        tried.append(name)
    raise CheckpointError(
        f"{run_dir}: no weights file matches {STATE} (epoch {state['epoch']}); checked {', '.join(tried) or 'none'} "
        "— truncated or corrupt, refusing to load"
    )
