"""The search run: outputs, exact resume after a kill, bad options, and the searched model's surface."""

import csv
import dataclasses
import json

import pytest
import torch
from nas_helpers import synthetic_table

import starquad
from starquad.errors import ConfigError
from starquad.nas import get_space
from starquad.nas.config import SearchConfig
from starquad.nas.search import search
from starquad.train.state import load_run_state

SPACE = get_space("quadranet")


def _cfg(tmp_path, **kw) -> SearchConfig:
    table = synthetic_table(SPACE)
    table.fit["error95"] = 0.02
    path = table.save(tmp_path / "table.json")
    budget = 0.8 * table.predict_ms(SPACE, [0] * SPACE.num_layers)  # synthetic ms: binds
    base = dict(budget_ms=budget, table=str(path), subset=160, eval_subset=40, epochs=2, warmup_epochs=1,
                batch_size=40, tries=1, train_threads=1)  # fmt: skip
    return SearchConfig(**{**base, **kw})


@pytest.mark.slow
def test_a_search_writes_its_run_and_resumes_exactly_after_a_kill(tmp_path, monkeypatch):
    full = search(_cfg(tmp_path, out=str(tmp_path / "full")), log=lambda m: None)
    for name in ("args.json", "alpha_history.csv", "alpha.png", "arch.json", "result.json", "last.safetensors"):
        assert (tmp_path / "full" / name).is_file(), name
    result = json.loads((tmp_path / "full" / "result.json").read_text())
    for key in ("space", "budget_ms", "predicted_ms", "measured_ms", "skips", "runtime", "threads", "input_size"):
        assert key in result, key
    assert result["predicted_ms"] <= result["budget_ms"] and result["measured_ms"] > 0
    with open(tmp_path / "full" / "alpha_history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"] and rows[0]["arch_loss"] == "" and rows[1]["arch_loss"] != ""

    import starquad.nas.search as search_module

    real = search_module._write_rows

    def killed_after_first_epoch(path, rows):
        real(path, rows)
        raise KeyboardInterrupt  # the process dies right after epoch 0's checkpoint

    monkeypatch.setattr(search_module, "_write_rows", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        search(_cfg(tmp_path, out=str(tmp_path / "cut")), log=lambda m: None)
    monkeypatch.setattr(search_module, "_write_rows", real)
    with pytest.raises(ConfigError, match="already holds a search; pass --resume"):
        search(_cfg(tmp_path, out=str(tmp_path / "cut")), log=lambda m: None)
    resumed = search(_cfg(tmp_path, out=str(tmp_path / "cut"), resume=True), log=lambda m: None)
    a, _ = load_run_state(tmp_path / "full")
    b, _ = load_run_state(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise: weights and α
    assert resumed["arch"] == full["arch"]

    model = starquad.create_model("nas", arch=str(tmp_path / "full" / "arch.json"), num_classes=10, in_chans=1)
    same = starquad.create_model(str(tmp_path / "full" / "arch.json"), num_classes=10, in_chans=1)
    assert model.pretrained_cfg["nas_arch"] == full["arch"] == same.pretrained_cfg["nas_arch"]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)

    from starquad.nas.search import retrain
    from starquad.train import TrainConfig

    tcfg = TrainConfig(subset=100, eval_subset=50, epochs=1, batch_size=50, warmup_epochs=0, threads=1)
    before = dataclasses.asdict(tcfg)
    again = retrain(tmp_path / "full", tcfg, log=lambda m: None, measure=lambda *args: 0.1)
    assert dataclasses.asdict(tcfg) == before  # the caller's config is left as it was
    assert again["arch"] == full["arch"] and (tmp_path / "full" / "retrain" / "nas_result.json").is_file()


@pytest.mark.parametrize(("change", "message"), [
    (dict(budget_ms=-1.0), "budget_ms must be a positive number of milliseconds, got -1.0"),
    (dict(space="nope"), "space must be one of quadranet, mbconv, interaction, got 'nope'"),
    (dict(warmup_epochs=5, epochs=3), r"warmup_epochs \(5\) must be smaller than epochs \(3\)"),
    (dict(arch_fraction=1.5), "arch_fraction must be > 0 and <= 0.999, got 1.5"),
])  # fmt: skip
def test_bad_search_options_are_named(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        search(_cfg(tmp_path, out=str(tmp_path / "x"), **change))


def test_model_nas_without_an_architecture_says_what_it_needs(tmp_path):
    with pytest.raises(ConfigError, match="needs arch=PATH"):
        starquad.create_model("nas")
    (tmp_path / "bad.json").write_text('{"space": "quadranet"}')
    with pytest.raises(ConfigError, match="not a starquad architecture file"):
        starquad.create_model(str(tmp_path / "bad.json"))
