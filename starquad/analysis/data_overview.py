"""Report section ``data``: the dataset the other sections train on — counts, class balance, samples."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from starquad.analysis.report import SectionContext, SectionResult, register_section
from starquad.data import build_dataset, dataset_info

__all__ = ["data_section", "plot_class_balance", "plot_sample_grid"]

DATASET = "fashion-mnist"


def plot_sample_grid(images: np.ndarray, labels: np.ndarray, classes, per_class: int, path, seed: int = 0) -> None:
    """Save a grid of ``per_class`` random images per class (one row per class, class names on the left)."""
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(per_class * 0.9 + 1.6, len(classes) * 0.9))
    axes = fig.subplots(len(classes), per_class, squeeze=False)
    for c, name in enumerate(classes):
        pool = np.flatnonzero(labels == c)
        picks = rng.choice(pool, size=min(per_class, len(pool)), replace=False)
        for j, ax in enumerate(axes[c]):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(picks):
                ax.imshow(images[picks[j]], cmap="gray", vmin=0, vmax=255)
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(left=1.4 / fig.get_figwidth(), right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    fig.savefig(path, dpi=100)


def plot_class_balance(splits: dict, classes, path) -> None:
    """Save a grouped bar chart of samples per class, one bar group per split."""
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(classes))
    width = 0.8 / len(splits)
    for k, (split, s) in enumerate(splits.items()):
        ax.bar(x + (k - (len(splits) - 1) / 2) * width, s["per_class"], width, label=f"{split} ({s['count']})")
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("samples")
    ax.set_ylim(0, 1.25 * max(max(s["per_class"]) for s in splits.values()))  # headroom for the legend
    ax.set_title("Samples per class")
    ax.legend(loc="upper center", ncols=len(splits))
    fig.savefig(path, dpi=100)


@register_section("data", "Data: Fashion-MNIST", order=0)
def data_section(ctx: SectionContext) -> SectionResult:
    info = dataset_info(DATASET, data_dir=ctx.data_dir)
    classes = info["classes"]
    train = build_dataset(DATASET, "train", data_dir=ctx.data_dir)
    grid, balance = ctx.figure_path("data", "samples"), ctx.figure_path("data", "balance")
    plot_sample_grid(train.images, train.labels, classes, per_class=8, path=grid, seed=ctx.seed)
    plot_class_balance(info["splits"], classes, balance)

    imbalance = {s: max(v["per_class"]) / max(1, min(v["per_class"])) for s, v in info["splits"].items()}
    md = [
        f"{info['description']}. Read from `{info['source']}`; items are {info['shape'][0]}×{info['shape'][1]} grey.",
        "",
        "| split | samples | per class (min–max) | max/min |",
        "|---|---|---|---|",
    ]
    for split, s in info["splits"].items():
        pc = s["per_class"]
        md.append(f"| {split} | {s['count']} | {min(pc)}–{max(pc)} | {imbalance[split]:.3f} |")
    md += ["", "| class | " + " | ".join(info["splits"]) + " |", "|---|" + "---|" * len(info["splits"])]
    for c, name in enumerate(classes):
        md.append(f"| {c} {name} | " + " | ".join(str(s["per_class"][c]) for s in info["splits"].values()) + " |")
    results = {
        "dataset": DATASET,
        "source": info["source"],
        "shape": info["shape"],
        "classes": classes,
        "splits": info["splits"],
        "imbalance_max_over_min": imbalance,
    }
    return SectionResult(results, "\n".join(md), figures=[grid, balance])
