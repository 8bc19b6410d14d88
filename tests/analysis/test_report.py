import json

import numpy as np
import pytest
from PIL import Image

from starquad.analysis import SectionResult, register_section, run_reproduce
from starquad.analysis import report as report_mod
from starquad.errors import ConfigError


@pytest.fixture
def toy_sections():
    @register_section("toy_ok", "Toy section that works", order=900)
    def ok(ctx):
        path = ctx.figure_path("toy_ok", "fig")
        Image.new("RGB", (4, 4)).save(path)
        return SectionResult({"value": np.float32(1.5)}, "all *fine*", figures=[path])

    @register_section("toy_fail", "Toy section that fails", order=901)
    def fail(ctx):
        raise RuntimeError("boom in toy section")

    yield
    for name in ("toy_ok", "toy_fail"):
        report_mod._SECTIONS.pop(name)


def test_failing_section_is_isolated(tmp_path, toy_sections):
    results = run_reproduce(
        tmp_path, sections=["toy_fail", "toy_ok"], command="starquad reproduce --x", log=lambda m: None
    )
    assert results["toy_fail"]["status"] == "failed" and "boom in toy section" in results["toy_fail"]["error"]
    assert results["toy_ok"]["status"] == "ok" and results["toy_ok"]["value"] == 1.5
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert set(on_disk) == {"_meta", "toy_fail", "toy_ok"}
    assert on_disk["_meta"]["command"] == "starquad reproduce --x" and "torch" in on_disk["_meta"]["versions"]
    report = (tmp_path / "report.md").read_text()
    assert "**FAILED**: `RuntimeError: boom in toy section`" in report
    assert "all *fine*" in report and "(toy_ok_fig.png)" in report


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown report section.*nope.*available: data"):
        run_reproduce(tmp_path, sections=["nope"])


def test_data_section(tmp_path):
    results = run_reproduce(tmp_path, sections=["data"], log=lambda m: None)
    data = results["data"]
    assert data["status"] == "ok"
    assert data["splits"]["train"]["count"] == 60000 and data["splits"]["test"]["count"] == 10000
    assert data["splits"]["train"]["per_class"] == [6000] * 10 and data["shape"] == [28, 28]
    for name in ("data_samples.png", "data_balance.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.width > 300
    report = (tmp_path / "report.md").read_text()
    assert "| train | 60000 | 6000–6000 | 1.000 |" in report and "![data: data_samples](data_samples.png)" in report


# Per-seed differences of three toy claims: clear at the pilot; close (unresolved at 3 seeds, resolved at 6);
# tiny (its spread needs far more than 6 seeds).
TOY_DIFFS = {"clear": [3.0, 3.1, 2.9, 3.0, 3.2, 2.8], "close": [1.0, 0.7, 1.3, 0.9, 1.1, 0.8],
             "tiny": [0.3, -0.5, 0.9, -0.2, 0.6, 0.1]}  # fmt: skip


@pytest.fixture
def seeded_sections():
    from starquad.stats import paired_claim

    calls = []

    def make(name, claim, runs_per_seed):
        @register_section(name, f"toy {claim}", order=950 + len(calls), seeded=True)
        def run(ctx):
            if not ctx.collecting:  # the report asks every seeded section first what it needs
                calls.append((name, ctx.n_seeds))
            seeds = range(ctx.seed, ctx.seed + ctx.n_seeds)
            ctx.run_keys.update(f"{name}-arm{arm}-s{s}" for s in seeds for arm in range(runs_per_seed))
            diffs = TOY_DIFFS[claim][: ctx.n_seeds]
            c = paired_claim(claim, diffs, [0.0] * len(diffs), delta=ctx.top1_delta, confidence=ctx.confidence)
            return SectionResult({"seeds": list(seeds)}, f"{claim} at {ctx.n_seeds} seeds", claims=[c])

    for name, claim in (("toy_clear", "clear"), ("toy_close", "close"), ("toy_tiny", "tiny")):
        make(name, claim, runs_per_seed=2)
    calls.clear()
    yield calls
    for name in ("toy_clear", "toy_close", "toy_tiny"):
        report_mod._SECTIONS.pop(name)


def test_seeds_go_where_they_pay(tmp_path, seeded_sections):
    from starquad.stats import HELD, NOT_RESOLVED, SeedPlan

    plan = SeedPlan(pilot=3, max_seeds=6, step=3)
    results = run_reproduce(tmp_path, sections=["toy_clear", "toy_close", "toy_tiny"], log=lambda m: None, plan=plan,
                            max_runs=100)  # fmt: skip
    # every section runs its pilot; only the close claim's section comes back, at the next look
    assert seeded_sections == [("toy_clear", 3), ("toy_close", 3), ("toy_tiny", 3), ("toy_close", 6)]
    clear, close, tiny = (results[n]["claims"][0] for n in ("toy_clear", "toy_close", "toy_tiny"))
    assert clear["verdict"] == HELD and clear["n"] == 3 and clear["confidence"] == pytest.approx(0.975)
    assert close["verdict"] == HELD and close["n"] == 6 and results["toy_close"]["n_seeds"] == 6
    assert tiny["verdict"] == NOT_RESOLVED and tiny["seeds_needed"] > 6 and tiny["n"] == 3
    meta = json.loads((tmp_path / "results.json").read_text())["_meta"]
    assert meta["runs_used"] == 2 * (3 + 6 + 3) and meta["plan"]["looks"] == [3, 6]
    assert meta["claims"] == {"total": 3, HELD: 2, NOT_RESOLVED: 1}
    report = (tmp_path / "report.md").read_text()
    assert "**2 of 3 claims resolved**" in report and "Seeds: sequential — pilot 3, looks at 3, 6 seeds" in report


def test_the_run_budget_holds_back_a_look(tmp_path, seeded_sections):
    from starquad.stats import NOT_RESOLVED, SeedPlan

    plan = SeedPlan(pilot=3, max_seeds=6, step=3)
    results = run_reproduce(tmp_path, sections=["toy_close"], log=lambda m: None, plan=plan, max_runs=10)
    assert seeded_sections == [("toy_close", 3)]  # 6 runs used; 6 more would pass the budget of 10
    assert results["toy_close"]["claims"][0]["verdict"] == NOT_RESOLVED


def test_same_arguments_same_report(tmp_path, seeded_sections):
    from starquad.stats import SeedPlan

    plan = SeedPlan(pilot=3, max_seeds=6, step=3)
    first = run_reproduce(tmp_path / "a", sections=["toy_close", "toy_tiny"], log=lambda m: None, plan=plan)
    second = run_reproduce(tmp_path / "b", sections=["toy_close", "toy_tiny"], log=lambda m: None, plan=plan)
    assert [first[n]["claims"] for n in ("toy_close", "toy_tiny")] == [second[n]["claims"] for n in
                                                                      ("toy_close", "toy_tiny")]  # fmt: skip


@pytest.mark.parametrize("kwargs, match", [(dict(max_runs=0), "budget of runs"), (dict(top1_delta=0), "top1_delta"),
                                           (dict(top1_delta=float("nan")), "top1_delta")])  # fmt: skip
def test_bad_budget_or_delta(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        run_reproduce(tmp_path, sections=["data"], log=lambda m: None, **kwargs)


def test_the_readme_claims_table_is_generated_from_the_full_report():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("readme_claims", root / "scripts" / "readme_claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = json.loads((root / "docs/results/full/results.json").read_text())
    readme = (root / "README.md").read_text()
    assert module.updated_readme(readme, results) == readme, "run: python scripts/readme_claims.py"
    claims = [c for r in results.values() if isinstance(r, dict) for c in r.get("claims", [])]
    assert len(claims) == 30 and f"| held ({sum(c['verdict'] == 'held' for c in claims)}) |" in readme
