import argparse
import json
import subprocess
import sys

import pytest

from starquad.cli import main
from starquad.errors import DatasetError


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("models", "data list", "data info", "bench blocks", "bench memory", "reproduce"):
        assert cmd in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: starquad" in capsys.readouterr().out


def test_data_info_fashion_mnist(capsys):
    assert main(["data", "info", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert "train       60000 samples" in out and "test        10000 samples" in out
    assert "28×28 images, 1 channel, 10 classes" in out and "Ankle boot" in out


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ("fashion-mnist", "digits", "moons", "synthetic", "imagefolder"))


def test_missing_data_dir_is_one_line(capsys):
    assert main(["data", "info", "fashion-mnist", "--data-dir", "/nonexistent"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("starquad: error: Fashion-MNIST not found") and "/nonexistent" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_debug_shows_the_exception():
    with pytest.raises(DatasetError):
        main(["data", "info", "fashion-mnist", "--data-dir", "/nonexistent", "--debug"])


def test_unknown_dataset(capsys):
    assert main(["data", "info", "mnist-fashion"]) == 1
    assert "unknown dataset 'mnist-fashion'" in capsys.readouterr().err


def test_models_lists_timm_on_request(capsys):
    assert main(["models", "resnet18", "--timm"]) == 0
    assert "resnet18" in capsys.readouterr().out.split()


def test_reproduce_bad_section_and_threads(capsys, tmp_path):
    assert main(["reproduce", "--sections", "nope", "--out", str(tmp_path)]) == 1
    assert "unknown report section(s) nope" in capsys.readouterr().err
    assert main(["reproduce", "--threads", "0", "--out", str(tmp_path)]) == 1
    assert "threads must be >= 1 and <= 1024, got 0" in capsys.readouterr().err


def test_console_entry_point_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "starquad", "data", "info", "fashion-mnist", "--data-dir", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("starquad: error:")


def test_bench_blocks_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "rows.json"
    argv = ["bench", "blocks", "--blocks", "hor", "quadra_me", "--channels", "32", "--batch", "1", "--size", "14",
            "--depth", "1", "--rounds", "1", "--no-rss", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| QuadraBlock, memory-efficient | lean | 32 |" in table
    rows = json.loads(out.read_text())
    assert [r["key"] for r in rows] == ["hor", "quadra_me"] and rows[0]["memory_vs_hor"] == 1.0


def test_bench_memory_and_its_errors(capsys):
    assert main(["bench", "memory", "quadranet_xxs36", "hornet_t", "--img-size", "32", "--batch", "1"]) == 0
    out = capsys.readouterr().out
    assert "| hornet_t | 1×3×32×32 |" in out and "saved_ratio" in out
    assert main(["bench", "memory", "quadranet_t99"]) == 1
    assert "unknown model 'quadranet_t99'" in capsys.readouterr().err
    assert main(["bench", "blocks", "--batch", "0"]) == 1
    assert "batch must be >= 1" in capsys.readouterr().err


def test_help_does_not_import_torch():
    """What keeps `starquad --help` fast (≈0.1 s against ≈3 s for importing torch): the parser needs no torch."""
    code = ("import sys; sys.argv = ['starquad', '--help']; import starquad.cli as cli; cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def _subparser(parser, *path):
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize(("path", "config"), [
    (("train",), "starquad.train.config:TrainConfig"),
    (("bench", "latency"), "starquad.bench.config:LatencyConfig"),
    (("bench", "throughput"), "starquad.bench.config:ThroughputConfig"),
    (("bench", "memory"), "starquad.bench.config:MemoryConfig"),
    (("bench", "flops"), "starquad.bench.config:FlopsConfig"),
    (("bench", "blocks"), "starquad.bench.config:BlockStudyConfig"),
    (("export",), "starquad.deploy.config:ExportConfig"),
    (("reproduce",), "starquad.analysis.config:ReportConfig"),
    (("nas", "search"), "starquad.nas.config:SearchConfig"),
    (("nas", "latency", "build"), "starquad.nas.config:TableConfig"),
    (("nas", "latency", "validate"), "starquad.nas.config:ValidationConfig"),
    (("nas", "compare"), "starquad.analysis.config:CompareConfig"),
])  # fmt: skip
def test_a_subcommands_flags_are_its_configs_fields(path, config):
    import dataclasses
    import importlib

    from starquad.cli import build_parser

    module, name = config.split(":")
    cls = getattr(importlib.import_module(module), name)
    parser = _subparser(build_parser(), *path)
    dests = {a.dest for a in parser._actions}
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields - {"full"} <= dests  # reproduce's mode is --quick/--full, the presets
    for f in dataclasses.fields(cls):
        action = next((a for a in parser._actions if a.dest == f.name), None)
        assert action is None or f.metadata["help"].replace("%", "%%") in (action.help or ""), f.name
