"""One training epoch and one evaluation pass (the ConvNeXt-style engine), distributed-aware.

``train_one_epoch`` runs the optimizer over a loader with optional mixup/cutmix, gradient
accumulation, clipping, bf16 autocast and EMA; it stops the run on a non-finite loss (the caller's
last checkpoint, written at the end of the previous epoch, stays untouched). ``evaluate`` returns
loss, top-1 and top-5 summed over all processes.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from starquad.errors import StarquadError
from starquad.runtime import progress

__all__ = ["EpochStats", "NonFiniteLossError", "evaluate", "shifted", "train_one_epoch", "tta_views"]


class NonFiniteLossError(StarquadError, FloatingPointError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


@dataclass
class EpochStats:
    loss: float
    samples: int
    seconds: float
    updates: int


def _all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    device: torch.device,
    epoch: int,
    scheduler: Any = None,
    num_updates: int = 0,
    mixup_fn: Callable | None = None,
    ema: Any = None,
    clip_grad: float | None = None,
    amp: bool = False,
    grad_accum: int = 1,
    channels_last: bool = False,
    log: Callable[[str], None] | None = None,
    log_interval: int = 50,
    show_progress: bool = True,
) -> EpochStats:
    """Train for one epoch; returns the mean loss (over all processes) and counts.

    ``num_updates`` is the number of optimizer steps before this epoch (the scheduler's clock).
    """
    model.train()
    total_loss, samples, start = 0.0, 0, time.perf_counter()
    n_batches = len(loader)  # type: ignore[arg-type]
    optimizer.zero_grad(set_to_none=True)
    for i, (x, y) in enumerate(progress(loader, f"epoch {epoch}", n_batches) if show_progress else loader):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if mixup_fn is not None:
            x, y = mixup_fn(x, y)
        with _autocast(device, amp):
            loss = loss_fn(model(x), y)
        loss_value = loss.item()  # a sync point, once per step: the price of catching NaNs immediately
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                f"loss is {loss_value} at epoch {epoch}, step {i}; stopping (the last checkpoint is kept). "
                "Try a lower --lr, --clip-grad, or no --amp"
            )
        (loss / grad_accum).backward()
        last_in_epoch = i + 1 == n_batches
        if (i + 1) % grad_accum == 0 or last_in_epoch:
            if clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            num_updates += 1
            if ema is not None:
                ema.update(getattr(model, "module", model), step=num_updates)  # unwrap DDP
            if scheduler is not None:
                scheduler.step_update(num_updates=num_updates)
        total_loss += loss_value * x.shape[0]
        samples += x.shape[0]
        if log is not None and (i + 1) % log_interval == 0 and not sys.stderr.isatty():
            log(
                f"epoch {epoch} step {i + 1}/{n_batches} loss {loss_value:.4f} lr {optimizer.param_groups[0]['lr']:.3g}"
            )
    total_loss, samples = _all_reduce_sum([total_loss, float(samples)], device)
    return EpochStats(total_loss / max(samples, 1), int(samples), time.perf_counter() - start, num_updates)


def shifted(x: torch.Tensor, dx: int, dy: int, fill: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` (…, C, H, W) moved ``dx`` pixels right and ``dy`` down (negative: left, up); the uncovered border
    takes ``fill`` (one value per channel; default 0)."""
    out = torch.zeros_like(x)
    if fill is not None:
        out[...] = fill.to(x).view(-1, 1, 1)
    h, w = x.shape[-2:]
    if abs(dx) < w and abs(dy) < h:
        out[..., max(dy, 0):h - max(-dy, 0), max(dx, 0):w - max(-dx, 0)] = \
            x[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]  # fmt: skip
    return out


def tta_views(x: torch.Tensor, flip: bool = False, shift: int = 0, fill: torch.Tensor | None = None
              ) -> list[torch.Tensor]:  # fmt: skip
    """Test-time views of a batch: the batch itself, copies moved ``shift`` pixels right, left, down and up
    (border filled with ``fill``, see :func:`shifted`) and, with ``flip``, the mirror image of each."""
    views = [x]
    if shift:
        views += [shifted(x, dx, dy, fill) for dx, dy in ((shift, 0), (-shift, 0), (0, shift), (0, -shift))]
    return views + [v.flip(-1) for v in views] if flip else views


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, *, amp: bool = False,
             channels_last: bool = False, tta_flip: bool = False, tta_shift: int = 0,
             tta_fill: torch.Tensor | None = None) -> dict[str, float]:  # fmt: skip
    """Cross-entropy loss, top-1 and top-5 accuracy (%) over the whole loader, summed over processes.

    Test-time augmentation: the logits are the mean over :func:`tta_views` (``tta_flip``: the mirror image too;
    ``tta_shift``: copies moved that many pixels in each of four directions, border filled with ``tta_fill``,
    e.g. a black pixel after normalisation). Each view costs one more forward pass."""
    model.eval()
    loss_sum, correct1, correct5, n = 0.0, 0.0, 0.0, 0.0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            views = tta_views(x, tta_flip, tta_shift, tta_fill)
            logits = sum(model(v).float() for v in views) / len(views)
        loss_sum += criterion(logits, y).item()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top.eq(y[:, None])
        correct1 += hits[:, 0].sum().item()
        correct5 += hits.any(1).sum().item()
        n += y.shape[0]
    loss_sum, correct1, correct5, n = _all_reduce_sum([loss_sum, correct1, correct5, n], device)
    n = max(n, 1.0)
    return {"loss": loss_sum / n, "top1": 100 * correct1 / n, "top5": 100 * correct5 / n, "samples": int(n)}
