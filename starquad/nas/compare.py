"""The QuadraNet paper's Table III, on this machine: searched networks at equal *measured* latency.

Arms (every one at the same budgets, stem, head, stage widths, epochs, data, predictor protocol):

==============  ============================================================================================
``quadranet``   the search over QuadraBlocks (the paper's hardware-aware QuadraNet)
``mbconv``      the same search over MBConv (conventional ProxylessNAS)
``interaction`` the same search over interaction orders (linear, star, quadratic)
``random``      random search: a random preference per layer, derived and measured under the budget as
                the searches are (same derivation, no supernet)
``no_latency``  the quadranet search without the latency term (α steps on cross-entropy alone), derived
                under the budget all the same
==============  ============================================================================================

Budgets are percentiles (default 25/50/75) of the quadranet space's predicted latency. Each trial (arm ×
budget × seed) searches, retrains the derived network from scratch with the training engine, and is kept as
``OUT/trials/NAME/trial.json`` when done, so an interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from starquad.errors import ConfigError
from starquad.io import atomic_write
from starquad.nas.config import SearchConfig

__all__ = ["ARMS", "compare", "random_under_budget", "summarize_trials"]

_LOG = logging.getLogger(__name__)

ARMS: dict[str, dict[str, Any]] = {
    "quadranet": {"space": "quadranet"},
    "mbconv": {"space": "mbconv"},
    "interaction": {"space": "interaction"},
    "random": {"space": "quadranet", "random": True},
    "no_latency": {"space": "quadranet", "latency_loss": False},
}


def random_under_budget(cfg: SearchConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """A random architecture under the budget: Dirichlet(1) preferences per layer (seeded), then the search's own
    derivation (knapsack, measure, tighten)."""
    from starquad.nas.latency import measure_archs
    from starquad.nas.search import derive_within_budget, load_or_build_table
    from starquad.nas.space import get_space, save_arch

    space = get_space(cfg.space)
    table, table_path = load_or_build_table(cfg, log)
    probs = np.random.default_rng(cfg.seed).dirichlet(np.ones(len(space.candidates)), size=space.num_layers)
    derived = derive_within_budget(table, space, probs, cfg.budget_ms,
                                   lambda a: measure_archs(space, [a], table.protocol, label="random")[0][0],
                                   low=cfg.low, tries=cfg.tries, log=log)  # fmt: skip
    out = Path(cfg.out)
    save_arch(out / "arch.json", space, derived["arch"])
    result = {"space": space.name, "budget_ms": cfg.budget_ms, "predicted_ms": derived["predicted_ms"],
              "measured_ms": derived["measured_ms"], "budget_met": derived["budget_met"],
              "in_band": derived["in_band"], "skips": sum(space.candidates[i].kind == "skip" for i in derived["arch"]),
              "arch": derived["arch"], "runtime": table.protocol.runtime, "threads": table.protocol.threads,
              "input_size": [table.protocol.in_chans, cfg.img_size, cfg.img_size], "table": str(table_path),
              "seed": cfg.seed, "tries": derived["history"]}  # fmt: skip
    atomic_write(out / "result.json", json.dumps(result, indent=1) + "\n")
    return result


def compare(out: str | Path, arms: Sequence[str] = tuple(ARMS), percentiles: Sequence[float] = (25, 50, 75),
            seeds: Sequence[int] = (0, 1, 2), search: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) the comparison into ``out``; returns the summary (also ``out/summary.json``, ``table.md``,
    ``top1_vs_latency.png``). ``search`` overrides :class:`SearchConfig` fields, ``train`` TrainConfig fields of
    the retraining (default: Fashion-MNIST, 10 epochs)."""
    from starquad.nas.latency import latency_percentiles
    from starquad.nas.search import load_or_build_table, retrain
    from starquad.nas.search import search as run_search
    from starquad.nas.space import get_space
    from starquad.train.config import TrainConfig

    log = log or _LOG.info
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ConfigError(f"unknown arm(s) {', '.join(unknown)}; choose from: {', '.join(ARMS)}")
    out = Path(out)
    t0 = time.perf_counter()
    base = SearchConfig(**{"budget_ms": 1.0, **(search or {})})
    ref_table, _ = load_or_build_table(dataclasses.replace(base, space="quadranet"), log)
    budgets = latency_percentiles(ref_table, get_space("quadranet"), percentiles)
    log(f"budgets (quadranet's predicted latency at percentiles {list(percentiles)}): "
        f"{', '.join(f'{b:.4f}' for b in budgets)} ms")  # fmt: skip
    trials = []
    for b_index, budget in enumerate(budgets):
        for arm in arms:
            for seed in seeds:
                name = f"{arm}-p{percentiles[b_index]:g}-s{seed}"
                trial_dir = out / "trials" / name
                done = trial_dir / "trial.json"
                if done.is_file():
                    trials.append(json.loads(done.read_text()))
                    continue
                spec = ARMS[arm]
                cfg = dataclasses.replace(base, space=spec["space"], budget_ms=budget, seed=seed,
                                          out=str(trial_dir / "search"), resume=(trial_dir / "search" /
                                          "last.state.pt").exists(),
                                          latency_loss=spec.get("latency_loss", True))  # fmt: skip
                tt = time.perf_counter()
                log(f"trial {name}: budget {budget:.4f} ms")
                Path(cfg.out).mkdir(parents=True, exist_ok=True)
                found = random_under_budget(cfg, log) if spec.get("random") else run_search(cfg, log)
                tcfg = TrainConfig.from_dict({"data": base.data, "epochs": 10, "seed": seed,
                                              "output": str(trial_dir / "retrain"), **(train or {})},
                                             source="nas compare")  # fmt: skip
                if (trial_dir / "retrain" / "last.state.pt").exists():
                    tcfg.resume = str(trial_dir / "retrain")
                trained = retrain(cfg.out, tcfg, log)
                record = {"arm": arm, "space": spec["space"], "percentile": percentiles[b_index], "seed": seed,
                          **{k: trained[k] for k in ("top1", "params", "macs", "budget_ms", "predicted_ms",
                                                     "measured_ms", "budget_met", "epochs")},
                          "skips": found["skips"], "arch": found["arch"],
                          "seconds": time.perf_counter() - tt}  # fmt: skip
                atomic_write(done, json.dumps(record, indent=1) + "\n")
                trials.append(record)
    summary = summarize_trials(trials)
    summary["seconds"] = time.perf_counter() - t0
    atomic_write(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    atomic_write(out / "table.md", summary["table"] + "\n")
    _plot(trials, out / "top1_vs_latency.png")
    return summary


def summarize_trials(trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per (arm, budget): top-1 mean ± standard deviation over seeds, MACs, params, measured latency and how many
    met the budget; as rows and as a Markdown table like the paper's Table III."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for t in trials:
        groups.setdefault((t["arm"], t["percentile"]), []).append(t)
    rows = []
    for (arm, pct), ts in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        top1 = [t["top1"] for t in ts]
        rows.append({"arm": arm, "percentile": pct, "budget_ms": ts[0]["budget_ms"], "n": len(ts),
                     "top1_mean": statistics.fmean(top1), "top1_std": statistics.stdev(top1) if len(ts) > 1 else 0.0,
                     "macs_m": statistics.fmean(t["macs"] for t in ts) / 1e6,
                     "params_m": statistics.fmean(t["params"] for t in ts) / 1e6,
                     "measured_ms": statistics.fmean(t["measured_ms"] for t in ts),
                     "met": sum(bool(t["budget_met"]) for t in ts)})  # fmt: skip
    lines = ["| budget (pctl) | arm | top-1 % (mean ± sd) | MACs (M) | params (M) | measured ms | budget met |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['budget_ms']:.4f} ms (p{r['percentile']:g}) | {r['arm']} | {r['top1_mean']:.2f} ± "
                     f"{r['top1_std']:.2f} | {r['macs_m']:.2f} | {r['params_m']:.3f} | {r['measured_ms']:.4f} | "
                     f"{r['met']}/{r['n']} |")  # fmt: skip
    return {"rows": rows, "table": "\n".join(lines), "trials": len(trials)}


def _plot(trials: Sequence[dict[str, Any]], path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    for arm in dict.fromkeys(t["arm"] for t in trials):
        ts = [t for t in trials if t["arm"] == arm]
        ax.scatter([t["measured_ms"] for t in ts], [t["top1"] for t in ts], label=arm, s=18)
    for budget in sorted({t["budget_ms"] for t in trials}):
        ax.axvline(budget, color="0.8", lw=0.8, zorder=0)
    ax.set(xlabel="measured latency, ms (batch 1)", ylabel="top-1 %", title="searched networks (budgets: grey)")
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
