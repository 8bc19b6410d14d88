"""The comparison: trials kept and resumed, and the same architectures locally and under Ray (local cluster)."""

import json

import pytest
from nas_helpers import synthetic_table

from starquad.nas import get_space
from starquad.nas.compare import compare

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
