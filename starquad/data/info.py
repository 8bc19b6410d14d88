"""Summaries of a dataset: per-split counts, class balance, item shape, where it was found."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from starquad.data.datasets import SPLITS, ArrayImageDataset, PointDataset, build_dataset, dataset_spec

__all__ = ["dataset_info", "format_dataset_info"]


def _item_shape(ds) -> list[int] | None:
    if isinstance(ds, ArrayImageDataset):
        return list(ds.images.shape[1:])  # (H, W) grey or (H, W, C)
    if isinstance(ds, PointDataset):
        return list(ds.points.shape[1:])
    return None  # ImageFolder: sizes vary from file to file


def dataset_info(name: str, data_dir: str | os.PathLike | None = None, **kwargs) -> dict[str, Any]:
    """Counts per split and per class, item shape and source of a dataset, as a JSON-able dict."""
    spec = dataset_spec(name)
    info: dict[str, Any] = {"name": name, "description": spec.description, "splits": {}}
    for split in SPLITS:
        ds = build_dataset(name, split, data_dir=data_dir, **kwargs)
        per_class = np.bincount(np.asarray(ds.targets, dtype=np.int64), minlength=len(ds.classes))
        info["splits"][split] = {"count": len(ds), "per_class": per_class.tolist()}
        info.setdefault("classes", list(ds.classes))
        info.setdefault("shape", _item_shape(ds))
        info.setdefault("source", getattr(ds, "source", ""))
    info["num_classes"] = len(info["classes"])
    return info


def format_dataset_info(info: dict[str, Any]) -> str:
    """A human-readable block of :func:`dataset_info`'s result."""
    shape = info["shape"]
    if shape is None:
        shape_txt = "images of varying size"
    elif len(shape) == 1:
        shape_txt = f"{shape[0]}-D points"
    else:
        chans = shape[2] if len(shape) == 3 else 1
        shape_txt = f"{shape[0]}×{shape[1]} images, {chans} channel{'s' if chans > 1 else ''}"
    lines = [
        f"{info['name']}: {info['description']}",
        f"  found in: {info['source']}",
        f"  items:    {shape_txt}, {info['num_classes']} classes",
    ]
    for split, s in info["splits"].items():
        pc = s["per_class"]
        lines.append(f"  {split:<6}    {s['count']:>7} samples, per class {min(pc)}–{max(pc)}")
    lines.append(f"  classes:  {', '.join(info['classes'])}")
    return "\n".join(lines)
