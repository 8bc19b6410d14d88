"""Accuracy versus latency, drawn like the StarNet paper's Fig. 4: one point per model, families joined by a
line, starquad's models highlighted."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from typing import Any

from starquad.extras import require

__all__ = ["plot_accuracy_latency"]


def _family(name: str) -> str:
    """'timm:starnet_s1' → 'starnet (timm)', 'mobileone_s2' → 'mobileone', 'efficientnet_b0' → 'efficientnet'."""
    base = name.removeprefix("timm:")
    family = re.split(r"_s?\d|_[a-z]\d|_large|_small|_\d", base)[0]
    return f"{family} (timm)" if name.startswith("timm:") else family


def plot_accuracy_latency(rows: Sequence[dict[str, Any]], path: str | os.PathLike, title: str | None = None) -> int:
    """Draw ImageNet top-1 against latency for the rows that have both; returns how many points were drawn.

    Rows come from :func:`starquad.bench.suite.bench_latency`; with several backends, one panel line per
    (family, backend). starquad's models (names it registers) are drawn in red with stars.
    """
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from starquad.io import atomic_write
    from starquad.models import is_model

    points = [r for r in rows if r.get("top1") is not None and r.get("ms")]
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in points:
        groups.setdefault((_family(r["model"]), r["backend"]), []).append(r)
    several_backends = len({r["backend"] for r in points}) > 1
    palette = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 3]  # red is starquad's
    peer = 0
    for (family, backend), group in sorted(groups.items()):
        group = sorted(group, key=lambda r: r["ms"])
        ours = is_model(group[0]["model"])
        color = "tab:red" if ours else palette[peer % len(palette)]
        peer += 0 if ours else 1
        label = f"{family} [{backend}]" if several_backends else family
        ax.plot([r["ms"] for r in group], [r["top1"] for r in group], marker="*" if ours else "o",
                markersize=11 if ours else 6, linewidth=2 if ours else 1, color=color,
                label=label + (" (starquad)" if ours else ""), zorder=3 if ours else 2)  # fmt: skip
        for r in group:
            ax.annotate(r["model"].removeprefix("timm:"), (r["ms"], r["top1"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    stat = {r.get("statistic") for r in points} - {None}
    ax.set_xlabel(f"latency (ms{', ' + stat.pop() if len(stat) == 1 else ''})")
    ax.set_ylabel("ImageNet-1k top-1 (%, published)")
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or "Accuracy vs latency")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return len(points)
