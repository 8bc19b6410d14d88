"""``curves.png`` of a run directory: losses and top-1 per epoch, redrawn after every epoch."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from starquad.extras import require
from starquad.io import atomic_write

__all__ = ["plot_curves"]


def _series(rows: Sequence[dict[str, Any]], key: str) -> list[float | None]:
    return [float(r[key]) if r.get(key) not in (None, "", "None") else None for r in rows]


def plot_curves(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Train/eval loss (left) and eval top-1 (right, EMA too when kept) against epoch, written atomically."""
    matplotlib = require("matplotlib", "curves.png")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    ax_loss.plot(epochs, _series(rows, "train_loss"), "o-", label="train loss")
    ax_loss.plot(epochs, _series(rows, "eval_loss"), "s-", label="eval loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.legend()
    ax_acc.plot(epochs, _series(rows, "top1"), "o-", label="top-1")
    ema = _series(rows, "ema_top1")
    if any(v is not None for v in ema):
        ax_acc.plot(epochs, ema, "s--", label="EMA top-1")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("%")
    ax_acc.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
