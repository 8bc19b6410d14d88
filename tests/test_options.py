"""Options declared once (starquad.options): a config's flags, checks and presets all come from its fields."""

import argparse
import dataclasses

import pytest

from starquad.errors import ConfigError
from starquad.nas.config import SearchConfig, TableConfig, ValidationConfig
from starquad.train.config import TrainConfig

CONFIGS = [TrainConfig, SearchConfig, TableConfig, ValidationConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_is_a_flag_with_its_help(cls):
    parser = argparse.ArgumentParser()
    cls.add_arguments(parser)
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(flags) == {f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        assert flags[f.name].default is None and f.metadata["help"].replace("%", "%%") in flags[f.name].help


def test_a_command_line_is_coerced_and_checked_once():
    parser = argparse.ArgumentParser()
    SearchConfig.add_arguments(parser)
    args = parser.parse_args(["--budget-ms", "0.2", "--epochs", "5", "--no-latency-loss", "--space", "mbconv"])
    cfg = SearchConfig.from_dict(SearchConfig.given(args))
    assert (cfg.budget_ms, cfg.epochs, cfg.latency_loss, cfg.space, cfg.subset) == (0.2, 5, False, "mbconv", 12_000)
    with pytest.raises(SystemExit):  # argparse: the budget is required, a space must be one of the spaces
        parser.parse_args(["--epochs", "5"])


def test_presets_sit_under_the_values_given():
    cfg = SearchConfig.preset("quick", budget_ms=0.3, epochs=6)
    assert (cfg.epochs, cfg.warmup_epochs, cfg.subset) == (6, 1, 6000)
    assert TableConfig.preset("quick", space="mbconv").protocol().rounds == 3
    with pytest.raises(ConfigError, match="unknown preset 'slow'; choose one of: quick"):
        SearchConfig.preset("slow", budget_ms=0.3)


@pytest.mark.parametrize(("cls", "values", "message"), [
    (SearchConfig, {"budget_ms": 0.2, "arch_lr": "fast"}, "arch_lr must be a number, got 'fast'"),
    (SearchConfig, {"budget_ms": 0.2, "bugdet": 1}, r"unknown key\(s\) bugdet \(did you mean budget_ms or beta\?\); "
                                                    "'starquad nas search --help' lists every option"),
    (SearchConfig, {"budget_ms": 0.2, "space": "resnet"}, "space must be one of quadranet, mbconv, interaction"),
    (TableConfig, {"space": "quadranet", "runtime": "tensorrt"}, "runtime must be one of eager, compile"),
    (TableConfig, {"space": "quadranet", "fit": 2}, "fit must be >= 3"),
    (ValidationConfig, {"table": "t.json", "n": 1}, "n must be >= 2"),
    (TrainConfig, {"num_epochs": 3}, r"num_epochs \(did you mean epochs\?\)"),
])  # fmt: skip
def test_bad_values_are_named(cls, values, message):
    with pytest.raises(ConfigError, match=message):
        cls.from_dict(values)
