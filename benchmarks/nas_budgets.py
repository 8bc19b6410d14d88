"""Does the searched network meet its latency budget when it is actually timed?

    python benchmarks/nas_budgets.py --space quadranet --percentiles 25 50 75 --seeds 0 1 2 --out runs/nas-budgets

Runs ``starquad nas search`` (default settings, or ``--quick``) at budgets set by percentiles of the space's
predicted latency (its cached latency table; built when missing), once per seed, and prints per run the budget,
the measured latency of the derived network, measured / budget, whether it is within [low · budget, budget],
the derivation's tries and the number of skips. A benchmark, not a test: it gates nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

from starquad.bench import markdown_table
from starquad.nas.config import QUICK_SEARCH, SearchConfig
from starquad.nas.latency import latency_percentiles
from starquad.nas.search import load_or_build_table, search
from starquad.nas.space import get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="quadranet")
    ap.add_argument("--percentiles", nargs="+", type=float, default=[25, 50, 75])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default="runs/nas-budgets")
    ap.add_argument("--quick", action="store_true", help="quick searches (4 epochs on 6,000 images)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("nas_budgets").info
    base = SearchConfig(space=args.space, budget_ms=1.0, **(QUICK_SEARCH if args.quick else {}))
    table, _ = load_or_build_table(base, log)
    budgets = latency_percentiles(table, get_space(args.space), args.percentiles)
    rows, t0 = [], time.perf_counter()
    for pct, budget in zip(args.percentiles, budgets, strict=True):
        for seed in args.seeds:
            out = Path(args.out) / f"{args.space}-p{pct:g}-s{seed}"
            done = out / "result.json"
            if done.is_file():
                r = json.loads(done.read_text())
            else:
                r = search(dataclasses.replace(base, budget_ms=budget, seed=seed, out=str(out),
                                               resume=(out / "last.state.pt").exists()), log)  # fmt: skip
            rows.append({"percentile": pct, "seed": seed, "budget_ms": round(r["budget_ms"], 4),
                         "measured_ms": round(r["measured_ms"], 4), "measured/budget": round(r["measured_ms"] /
                         r["budget_ms"], 3), "in [0.9, 1]×budget": r["in_band"], "tries": len(r["tries"]),
                         "skips": r["skips"], "supernet top-1": round(r["one_shot_top1"], 1),
                         "seconds": round(r["seconds"])})  # fmt: skip
    print(markdown_table(rows))
    print(f"\n{sum(r['in [0.9, 1]×budget'] for r in rows)}/{len(rows)} within [0.9, 1] × budget; "
          f"{time.perf_counter() - t0:.0f} s; CPU: {table.fingerprint['cpu']}")  # fmt: skip


if __name__ == "__main__":
    main()
