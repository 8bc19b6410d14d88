"""The frame of ``starquad reproduce``: a registry of report sections and the runner that isolates them.

A section is a function ``run(ctx) -> SectionResult`` registered with :func:`register_section`. The
runner calls each selected section in turn; one that raises is recorded as failed (with its error)
and the others still run. After every section the runner rewrites ``report.md`` and
``results.json`` (one top-level key per section), so an interrupted run keeps what it finished.

**Seeds where they pay.** A *seeded* section trains its comparisons over ``ctx.n_seeds`` seeds. Every seeded
section first runs the plan's pilot (:class:`~starquad.stats.SeedPlan`); then, while some claim of a seeded
section is unresolved and the power calculation says the seed maximum could resolve it, the section whose claims
need the fewest seeds runs again at the plan's next look (its runs already trained are read back, so only the
new seeds train), as long as the report's budget of runs allows. The budget counts runs, not seconds — each
distinct training a section asks for, trained now or read back — so every machine gives the same report, and a
killed report started again gives the same one. Every look judges at the plan's per-look confidence.

**Trainings side by side.** Before a seeded section runs (a pilot or a look), a *collect pass* calls it with
``ctx.collecting`` set: :func:`~starquad.analysis.fmnist.fmnist_run` then trains nothing and only notes what is
missing; those runs are trained by :func:`~starquad.analysis.pool.train_all` (``workers`` local processes or a
Ray cluster), and the section then runs for real and reads them all back. The pilots of all sections are
collected first, so the first batch of trainings packs every section's runs together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import logging
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from starquad.errors import ConfigError
from starquad.extras import require
from starquad.io import atomic_write
from starquad.runtime import cpu_model, progress
from starquad.stats import CONTRADICTED, HELD, METHOD, NO_EFFECT, NOT_RESOLVED, TOP1_DELTA, SeedPlan, verdict_table

__all__ = [
    "Section",
    "SectionContext",
    "SectionResult",
    "claims_table",
    "full_plan",
    "list_sections",
    "quick_plan",
    "register_section",
    "run_reproduce",
]

_LOG = logging.getLogger(__name__)


# The sequential plans and budgets (in runs) of the two modes. Quick: a 3-seed pilot and one more look at 6 seeds
# (each look at 97.5%); full: a 5-seed pilot and one more look at 10 seeds (each at 97.5%).
QUICK_PLAN, QUICK_MAX_RUNS = SeedPlan(pilot=3, max_seeds=6, step=3), 150
FULL_PLAN, FULL_MAX_RUNS = SeedPlan(pilot=5, max_seeds=10, step=5), 400


def quick_plan() -> tuple[SeedPlan, int]:
    return QUICK_PLAN, QUICK_MAX_RUNS


def full_plan() -> tuple[SeedPlan, int]:
    return FULL_PLAN, FULL_MAX_RUNS


@dataclass(frozen=True)
class SectionContext:
    """What a section gets: where to write, how thorough to be, the seed and the data folder; ``kept_seconds``
    collects the training time of runs read back instead of trained (finished by an earlier, interrupted
    invocation or by an earlier section that shares the network), so a report finished in parts still says what
    its sections cost. A seeded section trains over ``n_seeds`` seeds, judges its claims at ``confidence`` and
    declares top-1 claims with ``top1_delta``; ``run_keys`` collects the distinct trainings it asked for (the
    budget's unit)."""

    out_dir: Path
    full: bool = False
    seed: int = 0
    data_dir: Path | None = None
    kept_seconds: list[float] = field(default_factory=list)
    n_seeds: int | None = None
    confidence: float = 0.95
    top1_delta: float = TOP1_DELTA
    run_keys: set[str] = field(default_factory=set)
    run_threads: int = 1
    collecting: bool = False
    pending: list[Any] = field(default_factory=list)
    scratch: Path | None = None
    fresh: frozenset[str] = frozenset()
    trained_seconds: list[float] = field(default_factory=list)

    def figure_path(self, section: str, name: str) -> Path:
        """Where a section's PNG figure goes (inside ``out_dir``, so the report can embed it; in the collect pass,
        a scratch folder)."""
        return (self.scratch or self.out_dir) / f"{section}_{name}.png"


@dataclass
class SectionResult:
    """A section's output: JSON-able numbers, a Markdown body, the PNG figures it wrote, and its verdicts on the
    papers' claims (dicts from :func:`starquad.stats.paired_claim`)."""

    results: dict[str, Any]
    markdown: str
    figures: list[Path] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    run: Callable[[SectionContext], SectionResult]
    order: int
    seeded: bool = False


_SECTIONS: dict[str, Section] = {}


def register_section(name: str, title: str, order: int, seeded: bool = False):
    """Decorator: register ``fn(ctx) -> SectionResult`` as the report section ``name``; ``seeded``: it trains over
    ``ctx.n_seeds`` seeds, so the sequential plan may run it again with more."""

    def _register(fn: Callable[[SectionContext], SectionResult]):
        if name in _SECTIONS:
            raise ValueError(f"report section '{name}' is registered twice")
        _SECTIONS[name] = Section(name, title, fn, order, seeded)
        return fn

    return _register


@contextlib.contextmanager
def figure(path: str | Path, nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (5.5, 3.8)):
    """``with figure(path) as ax: ...``: a section's matplotlib axes (an array of them for several panels; Agg,
    100 dpi), laid out tight and saved to ``path`` when the block ends, then closed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, dpi=100)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


# The modules whose sections make the report (each registers its sections when imported).
SECTION_MODULES = ("data_overview", "implicit", "moons", "xor", "demonet", "ablations", "quadranet", "quadratic",
                   "quantization", "latency", "nas")  # fmt: skip


@functools.cache
def load_sections() -> None:
    """Import the report's section modules once (after checking the ``report`` extra is installed)."""
    for module in ("matplotlib", "sklearn", "scipy"):
        require(module, "starquad reproduce")
    for name in SECTION_MODULES:
        importlib.import_module(f"starquad.analysis.{name}")


def list_sections() -> list[str]:
    """Registered section names in report order."""
    load_sections()
    return [s.name for s in sorted(_SECTIONS.values(), key=lambda s: s.order)]


def _software_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import timm

    from starquad import __version__

    return {
        "starquad": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _git_commit() -> str:
    """The checkout's commit (with ``+changes`` when the working tree differs), or ``unknown`` outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _render(meta: dict[str, Any], records: dict[str, dict[str, Any]], bodies: dict[str, SectionResult]) -> str:
    lines = [
        "# starquad reproduce — report",
        "",
        f"Command: `{meta['command']}`  ",
        f"Mode: {meta['mode']}, seed {meta['seed']}, {meta['threads']} torch threads, started {meta['started']}  ",
        f"Machine: {meta['machine']}  ",
        f"Commit: {meta.get('commit', 'unknown')}  ",
        "Software: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "  ",
        _plan_line(meta),
        "",
        _training_line(meta),
        "",
        "Seconds: this invocation's wall time per section besides its trainings (all its looks); *trained*: the "
        "training time of the runs it used that this invocation trained (side by side, before the section ran; a "
        "run two sections share counts in both); *kept*: the training time of runs read back from an earlier, "
        "interrupted invocation.",
        "",
        "| section | status | seconds | trained (s) | kept (s) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| [{n}](#{n}) | {r['status']} | {r['seconds']:.1f} | {r.get('trained_seconds', 0.0):.0f} | "
              f"{r['kept_seconds']:.0f} |" for n, r in records.items()]  # fmt: skip
    lines.append(f"| all | | {sum(r['seconds'] for r in records.values()):.1f} | "
                 f"{sum(r.get('trained_seconds', 0.0) for r in records.values()):.0f} | "
                 f"{sum(r['kept_seconds'] for r in records.values()):.0f} |")  # fmt: skip
    claims = [dict(c, section=f"[{n}](#{n})") for n, body in bodies.items() for c in body.claims]
    if claims:
        counts = {v: sum(c["verdict"] == v for c in claims) for v in (HELD, CONTRADICTED, NO_EFFECT, NOT_RESOLVED)}
        resolved = len(claims) - counts[NOT_RESOLVED]
        lines += ["", "## Verdicts", "", f"**{resolved} of {len(claims)} claims resolved** ("
                  + ", ".join(f"{k} {v}" for k, v in counts.items()) + ").", "",
                  f"Each claim from runs paired by seed ({METHOD}; a − b in the claim's unit, mostly top-1 points; "
                  "δ: the claim's smallest effect of interest). *held*: the interval excludes 0 in the paper's "
                  "direction; *contradicted*: it excludes 0 the other way; *no effect at this scale*: it lies inside "
                  "±δ; *not resolved at this scale*: none of these, with the seeds that would resolve it at the spread "
                  "observed. For ≈ claims: inside ±δ is *held*, wholly outside is *contradicted*.", "",
                  verdict_table(claims)]  # fmt: skip
    for name, rec in records.items():
        lines += ["", f'<a id="{name}"></a>', f"## {rec['title']}", ""]
        if rec["status"] == "ok":
            body = bodies[name]
            lines.append(body.markdown.rstrip())
            if body.claims:
                lines += ["", "**Verdicts** (paired by seed):", "",
                          verdict_table(body.claims, section=name)]  # fmt: skip
            lines += [f"\n![{name}: {fig.stem}]({fig.name})" for fig in body.figures]
        else:
            lines += [f"**FAILED**: `{rec['error']}`", "", "<details><summary>traceback</summary>", "", "```"]
            lines += [rec["traceback"].rstrip(), "```", "</details>"]
    return "\n".join(lines) + "\n"


def _training_line(meta: dict[str, Any]) -> str:
    if "training_wall_seconds" not in meta:
        return ""
    cal = meta.get("calibration")
    measured = (f" (measured: runs per hour {', '.join(f'{k} at once {v:g}' for k, v in cal['runs_per_hour'].items())})"
                if cal else "")  # fmt: skip
    estimate = f"; estimated beforehand ≈ {meta['estimate_minutes']:g} min" if "estimate_minutes" in meta else ""
    return (f"Trainings: {meta['training_wall_seconds']:.0f} s wall, {meta['workers']} at a time{measured}"
            f"{estimate}  ")


def _plan_line(meta: dict[str, Any]) -> str:
    plan = meta.get("plan")
    if not plan:
        return ""
    used = f", {meta['runs_used']} used" if "runs_used" in meta else ""
    return (f"Seeds: sequential — pilot {plan['pilot']}, looks at {', '.join(map(str, plan['looks']))} seeds, each "
            f"judged at {plan['look_confidence']:.2%} (the 95% split over the looks, Bonferroni); budget "
            f"{plan['max_runs']} runs{used}; top-1 claims' δ {plan['top1_delta']:g} points")  # fmt: skip


def run_reproduce(
    out_dir: str | Path,
    sections: Sequence[str] | None = None,
    full: bool = False,
    seed: int = 0,
    data_dir: str | Path | None = None,
    command: str = "starquad reproduce",
    log: Callable[[str], None] | None = None,
    plan: SeedPlan | None = None,
    max_runs: int | None = None,
    top1_delta: float = TOP1_DELTA,
    workers: int | None = None,
    ray_address: str | None = None,
    run_threads: int = 1,
) -> dict[str, Any]:
    """Run the selected report sections (all by default) and write ``report.md`` and ``results.json``.

    Args:
        out_dir: where the report, results and figures go.
        sections: section names (default: all, in report order).
        full: more seeds and epochs (``--full``) instead of the quick defaults.
        seed: base seed of every section.
        data_dir: where to look for dataset files.
        command: the command line, recorded in the report.
        log: progress printer.
        plan: the seeded sections' sequential plan (default: the mode's, :func:`quick_plan` / :func:`full_plan`).
        max_runs: the budget of distinct trainings over all seeded sections (default: the mode's).
        top1_delta: the smallest effect of interest of the top-1 claims, in points.
        workers: trainings at once (default: measured on this machine, :func:`~starquad.analysis.pool.calibrate`).
        ray_address: train on this Ray cluster instead (``'local'``: start one here).
        run_threads: torch threads of every training (part of each run's recipe).

    Returns:
        The results dict (one key per section, each with ``status`` and ``seconds``).
    """
    load_sections()
    names = list(sections) if sections else list_sections()
    unknown = [n for n in names if n not in _SECTIONS]
    if unknown:
        raise ConfigError(f"unknown report section(s) {', '.join(unknown)}; available: {', '.join(list_sections())}")
    default_plan, default_runs = full_plan() if full else quick_plan()
    plan, max_runs = plan or default_plan, default_runs if max_runs is None else max_runs
    if not (isinstance(max_runs, int) and max_runs >= 1):
        raise ConfigError(f"the budget of runs must be a whole number >= 1, got {max_runs!r}")
    if not (isinstance(top1_delta, (int, float)) and 0 < top1_delta < 100):
        raise ConfigError(f"top1_delta (the smallest top-1 effect of interest, points) must be in (0, 100), got "
                          f"{top1_delta!r}")  # fmt: skip
    if workers is not None:
        from starquad.analysis.pool import check_workers  # pool imports fmnist, which imports this module

        check_workers(workers)
    if not (isinstance(run_threads, int) and run_threads >= 1):
        raise ConfigError(f"run_threads must be a whole number >= 1, got {run_threads!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = SectionContext(out_dir=out, full=full, seed=seed, data_dir=Path(data_dir) if data_dir else None,
                         confidence=plan.look_confidence, top1_delta=float(top1_delta),
                         run_threads=run_threads)  # fmt: skip
    meta = {
        "command": command,
        "mode": "full" if full else "quick",
        "seed": seed,
        "threads": torch.get_num_threads(),
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores ({platform.machine()}, {platform.system()})",
        "commit": _git_commit(),
        "versions": _software_versions(),
        "plan": {**dataclasses.asdict(plan), "looks": list(plan.looks), "look_confidence": plan.look_confidence,
                 "max_runs": max_runs, "top1_delta": float(top1_delta)},
    }  # fmt: skip
    state = _ReportState(out, meta, log or _LOG.info, workers, ray_address)
    pilots = {n: dataclasses.replace(ctx, n_seeds=plan.pilot if _SECTIONS[n].seeded else None) for n in names}
    state.train_missing([(n, c) for n, c in pilots.items() if c.n_seeds], estimate=True)
    for name in progress(names, "reproduce", len(names), leave=True):
        state.run(name, pilots[name])
    # more seeds where they pay: the section whose continuing claims need the fewest seeds first, within the budget
    over_budget: set[str] = set()
    while True:
        wanting = [(min(c["seeds_needed"] for c in cs), _SECTIONS[n].order, n) for n, cs in state.continuing(plan)
                   if n not in over_budget]  # fmt: skip
        if not wanting:
            break
        _, _, name = min(wanting)
        n_now = state.n_seeds[name]
        n_next = plan.next_look(n_now)
        cost = -(-len(state.run_keys[name]) * (n_next - n_now) // n_now)  # runs per seed × added seeds
        if state.runs_used() + cost > max_runs:
            state.log(f"[reproduce] {name}: {n_next} seeds would need ≈{cost} more runs, past the budget of "
                      f"{max_runs} ({state.runs_used()} used); its claims stay at {n_now} seeds")  # fmt: skip
            over_budget.add(name)
            continue
        state.log(f"[reproduce] {name}: claims unresolved at {n_now} seeds; next look at {n_next}")
        look = dataclasses.replace(ctx, n_seeds=n_next)
        state.train_missing([(name, look)])
        state.run(name, look)
    state.finish()
    return state.results


class _ReportState:
    """What the report has so far (one record per section, its latest look), rewritten to disk after every step."""

    def __init__(self, out: Path, meta: dict[str, Any], log: Callable[[str], None], workers: int | None,
                 ray_address: str | None):  # fmt: skip
        self.out, self.meta, self.log = out, meta, log
        self.workers, self.ray_address = workers, ray_address
        self.fresh: set[str] = set()  # the kept runs this invocation trained
        self.records: dict[str, dict[str, Any]] = {}
        self.bodies: dict[str, SectionResult] = {}
        self.results: dict[str, Any] = {"_meta": meta}
        self.n_seeds: dict[str, int] = {}
        self.run_keys: dict[str, set[str]] = {}

    def run(self, name: str, ctx: SectionContext) -> None:
        section = _SECTIONS[name]
        self.bodies.pop(name, None)
        looks = f" ({ctx.n_seeds} seeds)" if ctx.n_seeds else ""
        self.log(f"[reproduce] {name}: {section.title}{looks} ...")
        t0 = time.perf_counter()
        section_ctx = dataclasses.replace(ctx, kept_seconds=[], run_keys=set(), trained_seconds=[],
                                          fresh=frozenset(self.fresh))  # fmt: skip
        previous = self.results.get(name, {})
        try:
            body = section.run(section_ctx)
            rec = {"status": "ok"}
            self.bodies[name] = body
            self.results[name] = {"status": "ok", **body.results, "claims": body.claims}
        except Exception as e:  # a failing section is reported; the others still run
            rec = {"status": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            self.results[name] = {"status": "failed", "error": rec["error"]}
        # a later look's seconds add to the earlier ones': the section's cost is all its looks
        seconds = time.perf_counter() - t0 + previous.get("seconds", 0.0)
        trained = sum(section_ctx.trained_seconds) + previous.get("trained_seconds", 0.0)
        rec.update(title=section.title, seconds=seconds, kept_seconds=sum(section_ctx.kept_seconds),
                   trained_seconds=trained)  # fmt: skip
        self.results[name].update(seconds=round(seconds, 2), kept_seconds=round(rec["kept_seconds"], 2),
                                  trained_seconds=round(trained, 2),
                                  n_seeds=ctx.n_seeds, runs_used=len(section_ctx.run_keys))  # fmt: skip
        self.records[name] = rec
        if ctx.n_seeds:
            self.n_seeds[name] = ctx.n_seeds
            self.run_keys[name] = set(section_ctx.run_keys)
        self.log(f"[reproduce] {name}: {rec['status']} in {time.perf_counter() - t0:.1f}s"
                 + (f" — {rec['error']}" if "error" in rec else ""))  # fmt: skip
        self.write()

    def train_missing(self, looks: Sequence[tuple[str, SectionContext]], estimate: bool = False) -> None:
        """Collect what the sections need at these looks and train what is not kept yet (side by side)."""
        from starquad.analysis.pool import calibrate, describe, estimate_seconds, train_all

        pending = []
        with tempfile.TemporaryDirectory(prefix="starquad-collect-") as scratch:
            for name, ctx in looks:
                probe = dataclasses.replace(ctx, collecting=True, pending=[], run_keys=set(), kept_seconds=[],
                                            scratch=Path(scratch))  # fmt: skip
                try:
                    _SECTIONS[name].run(probe)
                except Exception as e:  # the real pass reports it; its runs train there, one by one
                    _LOG.debug(f"collect pass of {name} failed: {type(e).__name__}: {e}")
                pending += probe.pending
        if not pending:
            return
        if self.workers is None and self.ray_address is None:
            calibration = calibrate(pending, pending[0].cfg.threads)
            self.workers = calibration.best_workers
            self.meta["calibration"] = describe(calibration)
            self.log(f"[reproduce] calibration: one short training {calibration.seconds_alone:.1f} s; runs per hour "
                     + ", ".join(f"{k} at once {v:.0f}" for k, v in calibration.runs_per_hour.items())
                     + f" → {self.workers} at a time")  # fmt: skip
            if estimate:
                minutes = estimate_seconds(pending, calibration) / 60
                self.meta["estimate_minutes"] = round(minutes, 1)
                self.log(f"[reproduce] {len(set(r.kept for r in pending))} trainings for the pilots: ≈ {minutes:.0f} "
                         "min here (then the other sections, and more seeds where claims are close)")  # fmt: skip
        todo = [r for r in pending if r.kept.name not in self.fresh]
        started = time.perf_counter()
        train_all(todo, self.workers or 1, self.ray_address, self.log)
        self.fresh.update(r.kept.name for r in todo)
        self.meta["training_wall_seconds"] = round(self.meta.get("training_wall_seconds", 0.0)
                                                   + time.perf_counter() - started, 1)  # fmt: skip
        self.meta["workers"] = "ray " + self.ray_address if self.ray_address else self.workers

    def runs_used(self) -> int:
        return len(set().union(*self.run_keys.values())) if self.run_keys else 0

    def continuing(self, plan: SeedPlan) -> list[tuple[str, list[dict[str, Any]]]]:
        """The seeded sections (that did not fail) with claims that ask for another look."""
        out = []
        for name, n in self.n_seeds.items():
            body = self.bodies.get(name)
            claims = [c for c in body.claims if plan.continues(c)] if body and self.records[name]["status"] == "ok" \
                else []  # fmt: skip
            if claims and plan.next_look(n) is not None:
                out.append((name, claims))
        return out

    def finish(self) -> None:
        self.meta["runs_used"] = self.runs_used()
        claims = [c for body in self.bodies.values() for c in body.claims]
        self.meta["claims"] = {"total": len(claims), **{v: sum(c["verdict"] == v for c in claims)
                                                         for v in dict.fromkeys(c["verdict"] for c in claims)}}
        self.write()

    def write(self) -> None:
        atomic_write(self.out / "results.json", json.dumps(self.results, indent=2, default=_json_default) + "\n")
        atomic_write(self.out / "report.md", _render(self.meta, self.records, self.bodies))


def claims_table(results: dict[str, Any]) -> str:
    """The claims of a ``results.json`` grouped by verdict, as the Markdown table the README shows (generated, so
    it cannot drift from the report: ``python scripts/readme_claims.py``)."""
    from starquad.stats import CONTRADICTED, HELD, NO_EFFECT, NOT_RESOLVED

    by_verdict: dict[str, list[str]] = {v: [] for v in (HELD, CONTRADICTED, NO_EFFECT, NOT_RESOLVED)}
    for section, record in results.items():
        if isinstance(record, dict):
            for c in record.get("claims", []):
                by_verdict.setdefault(c["verdict"], []).append(f"{c['claim']} (`{section}`)")
    lines = ["| verdict | claims (section) |", "|---|---|"]
    lines += [f"| {verdict} ({len(claims)}) | {'; '.join(claims)} |"
              for verdict, claims in by_verdict.items() if claims]  # fmt: skip
    return "\n".join(lines)


def _json_default(obj: Any):
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
