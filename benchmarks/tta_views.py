"""Top-1 of finished runs under each test-time augmentation, on the data each run evaluated on.

    python benchmarks/tta_views.py runs/sweep/base-s0 runs/sweep/base-s1 ...

Loads each run's ``last.safetensors`` with its ``args.yaml`` (so a ``--holdout`` run is scored on its held-out
images, never the test split) and prints one Markdown row per run: no TTA, flip, shifts of 1 pixel, and both
(:func:`starquad.train.engine.tta_views`). This is how the Fashion-MNIST recipe's ``tta_shift: 1`` was chosen
(``docs/results/fmnist-sweep/``). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from starquad.models.checkpoint import load_checkpoint
from starquad.train.config import TrainConfig, read_yaml_mapping
from starquad.train.engine import evaluate
from starquad.train.runner import build_loaders, build_train_model, eval_options

VIEWS = {"none": (False, 0), "flip": (True, 0), "shift 1": (False, 1), "flip + shift 1": (True, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (args.yaml and last.safetensors)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print("| run | " + " | ".join(VIEWS) + " |\n|---|" + "---|" * len(VIEWS))
    for run in map(Path, args.runs):
        cfg = TrainConfig.from_dict(read_yaml_mapping(run / "args.yaml", "args.yaml"), source=str(run / "args.yaml"))
        _, loader, spec, num_classes = build_loaders(cfg)
        model = build_train_model(cfg, num_classes, spec.in_chans)
        load_checkpoint(model, run / "last.safetensors")
        model.to(device)
        top1 = []
        for flip, shift in VIEWS.values():
            options = eval_options(dataclasses.replace(cfg, tta_flip=flip, tta_shift=shift), spec)
            top1.append(evaluate(model, loader, device, **options)["top1"])
        print(f"| {run.name} | " + " | ".join(f"{t:.2f}" for t in top1) + " |", flush=True)


if __name__ == "__main__":
    main()
