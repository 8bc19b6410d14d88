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

from starquad.analysis.config import ARMS
from starquad.errors import ConfigError
from starquad.extras import require
from starquad.io import atomic_write
from starquad.nas.config import SearchConfig

__all__ = ["ARMS", "compare", "random_under_budget", "summarize_trials"]

_LOG = logging.getLogger(__name__)

# the retraining of every trial, unless told otherwise: sized so that the whole comparison (3 budgets × 5 arms ×
# 3 seeds, default searches) takes about 2.5 h on 2 cores
RETRAIN = {"epochs": 6, "subset": 20_000}



def random_under_budget(cfg: SearchConfig, log: Callable[[str], None], measure=None) -> dict[str, Any]:
    """A random architecture under the budget: Dirichlet(1) preferences per layer (seeded), then the search's own
    derivation (knapsack, measure, tighten)."""
    from starquad.nas.latency import measure_arch
    from starquad.nas.search import derive_within_budget, load_or_build_table
    from starquad.nas.space import get_space, save_arch

    space = get_space(cfg.space)
    table, table_path = load_or_build_table(cfg, log)
    probs = np.random.default_rng(cfg.seed).dirichlet(np.ones(len(space.candidates)), size=space.num_layers)
    derived = derive_within_budget(table, space, probs, cfg.budget_ms,
                                   lambda a: (measure or measure_arch)(space, a, table.protocol),
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


def run_trial(trial: dict[str, Any], base: SearchConfig, train_values: dict[str, Any],
              log: Callable[[str], None], measure=None) -> dict[str, Any]:  # fmt: skip
    """One trial (``{"arm", "percentile", "budget_ms", "seed", "dir"}``): search (or the random draw), retrain,
    time; written to ``dir/trial.json`` and returned. Resumes a search or retraining that was interrupted."""
    from starquad.nas.search import retrain
    from starquad.nas.search import search as run_search
    from starquad.train.config import TrainConfig

    trial_dir = Path(trial["dir"])
    spec = ARMS[trial["arm"]]
    cfg = dataclasses.replace(base, space=spec["space"], budget_ms=trial["budget_ms"], seed=trial["seed"],
                              out=str(trial_dir / "search"), resume=(trial_dir / "search" / "last.state.pt").exists(),
                              latency_loss=spec.get("latency_loss", True))  # fmt: skip
    t0 = time.perf_counter()
    log(f"trial {trial_dir.name}: budget {trial['budget_ms']:.4f} ms")
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    found = random_under_budget(cfg, log, measure) if spec.get("random") else run_search(cfg, log, measure)
    tcfg = TrainConfig.from_dict({"data": base.data, **train_values, "seed": trial["seed"],
                                  "output": str(trial_dir / "retrain")}, source="nas compare")  # fmt: skip
    if (trial_dir / "retrain" / "last.state.pt").exists():
        tcfg.resume = str(trial_dir / "retrain")
    trained = retrain(cfg.out, tcfg, log, measure=measure)
    record = {"arm": trial["arm"], "space": spec["space"], "percentile": trial["percentile"], "seed": trial["seed"],
              **{k: trained[k] for k in ("top1", "params", "macs", "budget_ms", "predicted_ms", "measured_ms",
                                         "budget_met", "epochs")},
              "skips": found["skips"], "arch": found["arch"], "seconds": time.perf_counter() - t0,
              "derive_measured_ms": found["measured_ms"], "derive_budget_met": found["budget_met"]}  # fmt: skip
    atomic_write(trial_dir / "trial.json", json.dumps(record, indent=1) + "\n")
    return record


def _kept_trial(trial_dir: Path) -> dict[str, Any]:
    """A finished trial's record; one kept before records carried the derivation's own measurement gets it from
    the search's ``result.json``."""
    record = json.loads((trial_dir / "trial.json").read_text())
    if "derive_measured_ms" not in record:
        found = json.loads((trial_dir / "search" / "result.json").read_text())
        record.update(derive_measured_ms=found["measured_ms"], derive_budget_met=found["budget_met"])
    return record


def compare(out: str | Path, arms: Sequence[str] = tuple(ARMS), percentiles: Sequence[float] = (25, 50, 75),
            seeds: Sequence[int] = (0, 1, 2), search: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
            recipe: str | None = None, train_threads: int | None = None, ray_workers: int | None = None,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) the comparison into ``out``; returns the summary (also ``out/summary.json``, ``table.md``,
    ``top1_vs_latency.png``).

    ``search`` overrides :class:`SearchConfig` fields; the retraining takes a training ``recipe`` (its model, model
    options and output left out), overridden by ``train`` (default: :data:`RETRAIN`). ``train_threads`` fixes the
    PyTorch threads of searches and retrainings (the same architectures need the same threads). With
    ``ray_workers``, the trials run as Ray Tune trials on that many CPUs (see :func:`_run_on_ray`)."""
    for module in ("matplotlib", "scipy"):  # its figure and verdicts
        require(module, "starquad nas compare")
    from starquad.nas.latency import latency_percentiles
    from starquad.nas.search import load_or_build_table
    from starquad.nas.space import get_space
    from starquad.train.config import load_recipe

    log = log or _LOG.info
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ConfigError(f"unknown arm(s) {', '.join(unknown)}; choose from: {', '.join(ARMS)}")
    out = Path(out)
    t0 = time.perf_counter()
    base = SearchConfig(**{"budget_ms": 1.0, **(search or {})})
    # every arm trains alike: no recipe time limit (it would cut a run by how loaded the machine was)
    recipe_values = {k: v for k, v in (load_recipe(recipe) if recipe else {}).items()
                     if k not in ("model", "model_kwargs", "output", "resume", "time_limit")}  # fmt: skip
    train_values = {**recipe_values, **RETRAIN, **(train or {})}  # the comparison's size beats the recipe's
    if train_threads is not None:
        base = dataclasses.replace(base, train_threads=train_threads)
        train_values["threads"] = train_threads
    # every table is built (or checked) here, on the machine that times, before any trial trains
    tables = {name: load_or_build_table(dataclasses.replace(base, space=name), log)[0]
              for name in dict.fromkeys(["quadranet", *(ARMS[a]["space"] for a in arms)])}  # fmt: skip
    budgets = latency_percentiles(tables["quadranet"], get_space("quadranet"), percentiles)
    log(f"budgets (quadranet's predicted latency at percentiles {list(percentiles)}): "
        f"{', '.join(f'{b:.4f}' for b in budgets)} ms")  # fmt: skip
    trials, pending = [], []
    for pct, budget in zip(percentiles, budgets, strict=True):
        for arm in arms:
            for seed in seeds:
                trial_dir = out / "trials" / f"{arm}-p{pct:g}-s{seed}"
                if (trial_dir / "trial.json").is_file():
                    trials.append(_kept_trial(trial_dir))
                else:
                    pending.append({"arm": arm, "percentile": pct, "budget_ms": budget, "seed": seed,
                                    "dir": str(trial_dir.resolve())})  # fmt: skip
    if pending and ray_workers:
        trials += _run_on_ray(pending, base, train_values, ray_workers, out)
    else:
        trials += [run_trial(t, base, train_values, log) for t in pending]
    summary = summarize_trials(trials)
    summary["seconds"] = time.perf_counter() - t0
    atomic_write(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    atomic_write(out / "table.md", summary["table"] + "\n")
    _plot(trials, out / "top1_vs_latency.png")
    return summary


class LatencyProbe:
    """The one place trials are timed (a Ray actor on the node that declares the ``latency_probe`` resource):
    measurements never run beside each other, and on a cluster never beside a training."""

    def measure(self, space, arch, protocol) -> float:
        from starquad.nas.latency import measure_arch

        return measure_arch(space, arch, protocol)


def _run_on_ray(pending: list[dict[str, Any]], base: SearchConfig, train_values: dict[str, Any], workers: int,
                out: Path) -> list[dict[str, Any]]:  # fmt: skip
    """The trials as Ray Tune trials (one CPU each, ``workers`` at a time). Started here, Ray is a local cluster
    of ``workers`` CPUs whose head declares one ``latency_probe``; on a cluster of your own, declare it on the
    node that should time (``ray start --resources='{"latency_probe": 1}'``) and connect before calling."""
    ray = require("ray", "--ray")
    tune = require("ray.tune", "--ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=workers, resources={"latency_probe": 1}, include_dashboard=False, log_to_driver=False,
                 object_store_memory=80 * 2**20)  # fmt: skip
    try:
        if not ray.cluster_resources().get("latency_probe"):
            raise ConfigError("no Ray node declares the 'latency_probe' resource; start the timing node with "
                              "ray start --resources='{\"latency_probe\": 1}'")  # fmt: skip
        probe = ray.remote(num_cpus=0, resources={"latency_probe": 1})(LatencyProbe).remote()

        def trainable(config):
            def measure(space, arch, protocol):
                return ray.get(probe.measure.remote(space, arch, protocol))

            record = run_trial(config["trial"], base, train_values, logging.getLogger("starquad.nas").info, measure)
            return {"top1": record["top1"], "measured_ms": record["measured_ms"]}

        run_config = (getattr(tune, "RunConfig", None) or ray.train.RunConfig)(
            name="nas-compare", storage_path=str((out / "ray").resolve()), verbose=0)  # fmt: skip
        tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space={"trial": tune.grid_search(pending)},
                           tune_config=tune.TuneConfig(max_concurrent_trials=workers),
                           run_config=run_config)  # fmt: skip
        results = tuner.fit()
        if results.errors:
            raise ConfigError(f"{len(results.errors)} Ray trial(s) failed; the first: {results.errors[0]}")
    finally:
        if started:
            ray.shutdown()
    return [json.loads((Path(t["dir"]) / "trial.json").read_text()) for t in pending]


# The claims the comparison tests, each at every budget: (arm a, arm b, what is claimed, where it comes from)
COMPARE_CLAIMS = (
    ("quadranet", "mbconv", "QuadraBlocks beat MBConv at equal latency", "paper Table III"),
    ("quadranet", "random", "the searched network beats random search under the same budget",
     "random search, the NAS baseline (Li & Talwalkar 2019)"),
)


def summarize_trials(trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per (arm, budget): top-1 mean ± standard deviation over seeds, MACs, params, latency (measured when the
    network was derived, and again after retraining in fresh sessions) and how many met the budget; as rows and
    as a Markdown table like the paper's Table III. With the verdicts of :data:`COMPARE_CLAIMS` (runs paired by
    seed, :func:`starquad.stats.paired_claim`)."""
    from starquad.stats import TOP1_DELTA, paired_claim, verdict_table

    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for t in trials:
        groups.setdefault((t["arm"], t["percentile"]), []).append(t)
    rows = []
    for (arm, pct), ts in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        top1 = [t["top1"] for t in ts]
        derived = [t.get("derive_measured_ms", t["measured_ms"]) for t in ts]
        rows.append({"arm": arm, "percentile": pct, "budget_ms": ts[0]["budget_ms"], "n": len(ts),
                     "top1_mean": statistics.fmean(top1), "top1_std": statistics.stdev(top1) if len(ts) > 1 else 0.0,
                     "macs_m": statistics.fmean(t["macs"] for t in ts) / 1e6,
                     "params_m": statistics.fmean(t["params"] for t in ts) / 1e6,
                     "derive_measured_ms": statistics.fmean(derived),
                     "measured_ms": statistics.fmean(t["measured_ms"] for t in ts),
                     "derive_met": sum(d <= t["budget_ms"] for d, t in zip(derived, ts, strict=True)),
                     "met": sum(bool(t["budget_met"]) for t in ts)})  # fmt: skip
    lines = ["| budget (pctl) | arm | top-1 % (mean ± sd) | MACs (M) | params (M) | measured ms: derived / retest | "
             "budget met: derived / retest |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['budget_ms']:.4f} ms (p{r['percentile']:g}) | {r['arm']} | {r['top1_mean']:.2f} ± "
                     f"{r['top1_std']:.2f} | {r['macs_m']:.2f} | {r['params_m']:.3f} | {r['derive_measured_ms']:.4f} / "
                     f"{r['measured_ms']:.4f} | {r['derive_met']}/{r['n']} / {r['met']}/{r['n']} |")  # fmt: skip
    claims = []
    by_seed = {(t["arm"], t["percentile"], t["seed"]): t["top1"] for t in trials}
    for a, b, claim, source in COMPARE_CLAIMS:
        for pct in sorted({t["percentile"] for t in trials}):
            seeds = sorted(s for (arm, p, s) in by_seed if arm == a and p == pct and (b, pct, s) in by_seed)
            if seeds:
                claims.append(paired_claim(f"{claim} (p{pct:g} budget)", [by_seed[(a, pct, s)] for s in seeds],
                                           [by_seed[(b, pct, s)] for s in seeds], labels=(a, b), paper=source,
                                           delta=TOP1_DELTA))
    if claims:
        lines += ["", verdict_table(claims, section="nas")]
    return {"rows": rows, "table": "\n".join(lines), "trials": len(trials), "claims": claims}


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
