"""The comparison: trials kept and resumed, and the same architectures locally and under Ray (local cluster)."""

import json

import pytest
from nas_helpers import synthetic_table

from starquad.analysis.nas_compare import compare
from starquad.nas import get_space

SPACE = get_space("quadranet")
TRAIN = {"epochs": 1, "subset": 200, "eval_subset": 100, "batch_size": 50, "warmup_epochs": 0}


def _search_options(tmp_path) -> dict:
    table = synthetic_table(SPACE)
    table.fit["error95"] = 0.02
    path = table.save(tmp_path / "table.json")
    # tries=1: the architecture is the first derivation, whatever the timing says — so it is reproducible
    return dict(table=str(path), subset=160, eval_subset=40, epochs=2, warmup_epochs=1, batch_size=40, tries=1)


def _archs(out) -> dict:
    return {p.parent.name: json.loads(p.read_text())["arch"] for p in sorted(out.glob("trials/*/trial.json"))}


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time (make test runs tests side by side)
def test_trials_are_kept_and_ray_finds_the_same_architectures(tmp_path):
    opts = dict(arms=["quadranet", "random"], percentiles=[50], seeds=[0, 1], search=_search_options(tmp_path),
                train=TRAIN, train_threads=1, log=lambda m: None)  # fmt: skip
    local = compare(tmp_path / "local", **opts)
    assert local["trials"] == 4 and "| quadranet |" in local["table"]
    archs = _archs(tmp_path / "local")
    assert set(archs) == {"quadranet-p50-s0", "quadranet-p50-s1", "random-p50-s0", "random-p50-s1"}
    assert (tmp_path / "local" / "top1_vs_latency.png").is_file()
    records = [json.loads(p.read_text()) for p in (tmp_path / "local").glob("trials/*/trial.json")]
    assert {r["epochs"] for r in records} == {TRAIN["epochs"]}  # the caller's retraining size, not a default

    # a finished trial is not run again: its record is read back as it was
    record = tmp_path / "local" / "trials" / "random-p50-s0" / "trial.json"
    before = record.read_text()
    again = compare(tmp_path / "local", **opts)
    assert record.read_text() == before and again["rows"] == local["rows"]

    pytest.importorskip("ray")
    remote = compare(tmp_path / "ray", ray_workers=2, **opts)
    assert remote["trials"] == 4 and _archs(tmp_path / "ray") == archs


def test_summary_pairs_arms_by_seed_and_keeps_both_measurements(tmp_path):
    from starquad.analysis.nas_compare import _kept_trial, summarize_trials

    def trial(arm, seed, top1, retest_ms):
        return {"arm": arm, "percentile": 50, "seed": seed, "top1": top1, "budget_ms": 0.2, "macs": 5e6,
                "params": 4e5, "measured_ms": retest_ms, "budget_met": retest_ms <= 0.2, "derive_measured_ms": 0.19}

    trials = [trial("quadranet", s, 86.0 + s, 0.19) for s in range(3)]
    trials += [trial("mbconv", s, 84.0 + s + 0.1 * (s % 2), 0.21 if s == 0 else 0.19) for s in range(3)]
    summary = summarize_trials(trials)
    (claim,) = summary["claims"]  # no random arm here: one claim
    assert claim["n"] == 3 and claim["verdict"] == "held" and claim["mean_diff"] == pytest.approx(2 - 0.1 / 3)
    mb = next(r for r in summary["rows"] if r["arm"] == "mbconv")
    assert (mb["derive_met"], mb["met"]) == (3, 2)  # met when derived; one over on the retest
    assert "| 3/3 / 2/3 |" in summary["table"] and "**held**" in summary["table"]
    # a trial kept before records carried the derivation's measurement reads it from its search
    (tmp_path / "search").mkdir()
    (tmp_path / "trial.json").write_text(json.dumps({k: v for k, v in trials[0].items() if not k.startswith("derive")}))
    (tmp_path / "search" / "result.json").write_text(json.dumps({"measured_ms": 0.185, "budget_met": True}))
    assert _kept_trial(tmp_path)["derive_measured_ms"] == 0.185


def test_the_comparison_table_groups_seeds_per_arm_and_budget():
    from starquad.analysis.nas_compare import summarize_trials

    trials = [{"arm": arm, "percentile": 50, "seed": s, "top1": top1, "macs": 2e6, "params": 1e5, "budget_ms": 0.2,
               "measured_ms": ms, "budget_met": ms <= 0.2}
              for arm, values in (("quadranet", [(80.0, 0.19), (82.0, 0.195), (84.0, 0.21)]),
                                  ("mbconv", [(79.0, 0.18), (79.0, 0.185)]))
              for s, (top1, ms) in enumerate(values)]  # fmt: skip
    summary = summarize_trials(trials)
    rows = {r["arm"]: r for r in summary["rows"]}
    assert rows["quadranet"]["top1_mean"] == pytest.approx(82.0) and rows["quadranet"]["top1_std"] == pytest.approx(2.0)
    assert rows["quadranet"]["met"] == 2 and rows["quadranet"]["n"] == 3 and rows["mbconv"]["top1_std"] == 0.0
    assert "| 0.2000 ms (p50) | quadranet | 82.00 ± 2.00 |" in summary["table"] and summary["trials"] == 5
