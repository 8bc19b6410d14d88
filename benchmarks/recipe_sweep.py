"""Sweep variants of a training recipe in parallel and rank them on held-out training images.

    python benchmarks/recipe_sweep.py -c fashion_mnist --grid sweep.yaml --parallel 6 --out runs/sweep

``--grid`` is a YAML mapping ``name: {option: value, ...}``; each variant is the recipe with those options
changed, trained by ``python -m starquad train`` in its own process (``--parallel`` at a time) and evaluated on
``--holdout`` class-stratified training images kept out of its training (the test split is never looked at, so
the chosen recipe's test top-1 stays an honest figure). ``--seeds`` repeats every variant with seeds 0…n-1.

Prints one row per variant (mean and spread over seeds of the last epoch's held-out top-1, and of the EMA's when
the recipe keeps one; the best epoch is not used: choosing it on the evaluation set would flatter every variant),
and writes ``OUT/sweep.json``. On a GPU machine every run uses the GPU; the accuracy of a recipe carries over to the
CPU, its time does not (time a chosen recipe on the machine it is meant for). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import yaml


def _last_row(run_dir: Path) -> dict[str, str] | None:
    try:
        with open(run_dir / "summary.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return None
    return rows[-1] if rows else None


def _train(recipe: dict, name: str, seed: int, out: Path, holdout: int) -> dict:
    run_dir = out / f"{name}-s{seed}"
    config = {**recipe, "seed": seed, "holdout": holdout, "output": str(run_dir)}
    recipe_file = out / f"{name}-s{seed}.yaml"
    recipe_file.write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.perf_counter()
    with open(out / f"{name}-s{seed}.log", "w") as log:
        rc = subprocess.call([sys.executable, "-m", "starquad", "train", "-c", str(recipe_file)], stdout=log,
                             stderr=subprocess.STDOUT)  # fmt: skip
    row = _last_row(run_dir) or {}
    return {"name": name, "seed": seed, "rc": rc, "seconds": time.perf_counter() - start,
            "top1": float(row["top1"]) if row.get("top1") else None,
            "ema_top1": float(row["ema_top1"]) if row.get("ema_top1") else None,
            "epochs": int(row["epoch"]) + 1 if row.get("epoch") else 0}  # fmt: skip


def _summary(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--config", required=True, help="the base recipe (YAML)")
    p.add_argument("--grid", required=True, help="YAML mapping: variant name -> options that differ from the recipe")
    p.add_argument("--parallel", type=int, default=2, help="trainings at a time (default 2)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per variant (default 1)")
    p.add_argument("--holdout", type=int, default=10_000, help="held-out training images (default 10000)")
    p.add_argument("--out", default="runs/sweep", help="output folder (default runs/sweep)")
    args = p.parse_args()
    recipe = yaml.safe_load(Path(args.config).read_text()) or {}
    grid = yaml.safe_load(Path(args.grid).read_text()) or {}
    if not isinstance(grid, dict) or not all(isinstance(v, dict) for v in grid.values()):
        sys.exit(f"{args.grid}: expected a mapping of variant name -> mapping of options")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, {**recipe, **changes}, seed) for seed in range(args.seeds) for name, changes in grid.items()]
    print(f"{len(jobs)} trainings, {args.parallel} at a time, {args.holdout} held-out images", flush=True)
    results = []
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(_train, cfg, name, seed, out, args.holdout) for name, cfg, seed in jobs]
        for f in as_completed(futures):
            r = f.result()
            results.append(r)
            print(f"  {r['name']} seed {r['seed']}: top-1 {r['top1']} (EMA {r['ema_top1']}), {r['epochs']} epochs, "
                  f"{r['seconds']:.0f} s, rc {r['rc']}", flush=True)  # fmt: skip
    print("\n| variant | options | held-out top-1 (last epoch) | EMA | n |")
    print("|---|---|---|---|---|")
    for name, changes in grid.items():
        mine = [r for r in results if r["name"] == name]
        top1 = [r["top1"] for r in mine if r["top1"] is not None]
        ema = [r["ema_top1"] for r in mine if r["ema_top1"] is not None]
        print(f"| {name} | {json.dumps(changes)} | {_summary(top1)} | {_summary(ema)} | {len(top1)} |")
    (out / "sweep.json").write_text(json.dumps({"recipe": recipe, "grid": grid, "results": results}, indent=1))


if __name__ == "__main__":
    main()
