"""The frame of ``starquad reproduce``: a registry of report sections and the runner that isolates them.

A section is a function ``run(ctx) -> SectionResult`` registered with :func:`register_section`. The
runner calls each selected section in turn; one that raises is recorded as failed (with its error)
and the others still run. After every section the runner rewrites ``report.md`` and
``results.json`` (one top-level key per section), so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from starquad.errors import ConfigError
from starquad.io import atomic_write
from starquad.runtime import cpu_model, progress
from starquad.stats import METHOD, verdict_table

__all__ = [
    "Section",
    "SectionContext",
    "SectionResult",
    "list_sections",
    "register_section",
    "run_reproduce",
]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SectionContext:
    """What a section gets: where to write, how thorough to be, the seed and the data folder; ``kept_seconds``
    collects the training time of runs read back instead of trained (finished by an earlier, interrupted
    invocation or by an earlier section that shares the network), so a report finished in parts still says what
    its sections cost."""

    out_dir: Path
    full: bool = False
    seed: int = 0
    data_dir: Path | None = None
    kept_seconds: list[float] = field(default_factory=list)

    def figure_path(self, section: str, name: str) -> Path:
        """Where a section's PNG figure goes (inside ``out_dir``, so the report can embed it)."""
        return self.out_dir / f"{section}_{name}.png"


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


_SECTIONS: dict[str, Section] = {}


def register_section(name: str, title: str, order: int):
    """Decorator: register ``fn(ctx) -> SectionResult`` as the report section ``name``."""

    def _register(fn: Callable[[SectionContext], SectionResult]):
        if name in _SECTIONS:
            raise ValueError(f"report section '{name}' is registered twice")
        _SECTIONS[name] = Section(name, title, fn, order)
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


def list_sections() -> list[str]:
    """Registered section names in report order."""
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
        "Software: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        "Seconds: this invocation's wall time per section; *kept*: the training time of runs the section read "
        "back instead of training them: finished by an earlier, interrupted invocation, or by an earlier section "
        "that shares the network (then already inside that section's seconds).",
        "",
        "| section | status | seconds | kept (s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| [{n}](#{n}) | {r['status']} | {r['seconds']:.1f} | {r['kept_seconds']:.0f} |"
              for n, r in records.items()]  # fmt: skip
    lines.append(f"| all | | {sum(r['seconds'] for r in records.values()):.1f} | "
                 f"{sum(r['kept_seconds'] for r in records.values()):.0f} |")  # fmt: skip
    claims = [dict(c, section=f"[{n}](#{n})") for n, body in bodies.items() for c in body.claims]
    if claims:
        lines += ["", "## Verdicts", "", f"Each claim from runs paired by seed ({METHOD}; a − b in the claim's "
                  "unit, mostly top-1 points). *held*: the interval excludes 0 in the paper's direction; "
                  "*contradicted*: it excludes 0 the other way; *not resolved at this scale*: it contains 0 "
                  "(for ≈ claims: inside / wholly outside / straddling ± the stated margin).", "",
                  verdict_table(claims)]  # fmt: skip
    for name, rec in records.items():
        lines += ["", f'<a id="{name}"></a>', f"## {rec['title']}", ""]
        if rec["status"] == "ok":
            body = bodies[name]
            lines.append(body.markdown.rstrip())
            if body.claims:
                lines += ["", "**Verdicts** (paired by seed, 95% t interval):", "",
                          verdict_table(body.claims, section=name)]  # fmt: skip
            lines += [f"\n![{name}: {fig.stem}]({fig.name})" for fig in body.figures]
        else:
            lines += [f"**FAILED**: `{rec['error']}`", "", "<details><summary>traceback</summary>", "", "```"]
            lines += [rec["traceback"].rstrip(), "```", "</details>"]
    return "\n".join(lines) + "\n"


def run_reproduce(
    out_dir: str | Path,
    sections: Sequence[str] | None = None,
    full: bool = False,
    seed: int = 0,
    data_dir: str | Path | None = None,
    command: str = "starquad reproduce",
    log: Callable[[str], None] | None = None,
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

    Returns:
        The results dict (one key per section, each with ``status`` and ``seconds``).
    """
    names = list(sections) if sections else list_sections()
    unknown = [n for n in names if n not in _SECTIONS]
    if unknown:
        raise ConfigError(f"unknown report section(s) {', '.join(unknown)}; available: {', '.join(list_sections())}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = SectionContext(out_dir=out, full=full, seed=seed, data_dir=Path(data_dir) if data_dir else None)
    meta = {
        "command": command,
        "mode": "full" if full else "quick",
        "seed": seed,
        "threads": torch.get_num_threads(),
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores ({platform.machine()}, {platform.system()})",
        "commit": _git_commit(),
        "versions": _software_versions(),
    }
    records: dict[str, dict[str, Any]] = {}
    bodies: dict[str, SectionResult] = {}
    results: dict[str, Any] = {"_meta": meta}
    log = log or _LOG.info
    for name in progress(names, "reproduce", len(names), leave=True):
        section = _SECTIONS[name]
        log(f"[reproduce] {name}: {section.title} ...")
        t0 = time.perf_counter()
        section_ctx = dataclasses.replace(ctx, kept_seconds=[])
        try:
            body = section.run(section_ctx)
            rec = {"status": "ok"}
            bodies[name] = body
            results[name] = {"status": "ok", **body.results, "claims": body.claims}
        except Exception as e:  # a failing section is reported; the others still run
            rec = {"status": "failed", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            results[name] = {"status": "failed", "error": rec["error"]}
        rec.update(title=section.title, seconds=time.perf_counter() - t0, kept_seconds=sum(section_ctx.kept_seconds))
        results[name]["seconds"] = round(rec["seconds"], 2)
        results[name]["kept_seconds"] = round(rec["kept_seconds"], 2)
        records[name] = rec
        log(
            f"[reproduce] {name}: {rec['status']} in {rec['seconds']:.1f}s"
            + (f" — {rec['error']}" if "error" in rec else "")
        )
        atomic_write(out / "results.json", json.dumps(results, indent=2, default=_json_default) + "\n")
        atomic_write(out / "report.md", _render(meta, records, bodies))
    return results


def _json_default(obj: Any):
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
