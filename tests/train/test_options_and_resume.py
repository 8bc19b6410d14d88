"""The one option list (flags from TrainConfig), ImageFolder training and evaluation protocol, resume changes."""

import argparse
import dataclasses
import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from starquad.data import dataset_spec
from starquad.train import TrainConfig, load_run_state, train
from starquad.train.config import RESUMABLE, add_train_arguments, config_from_args
from starquad.train.runner import _read_summary, eval_data_config

TINY = dict(model="starnet_s050", data="synthetic", img_size=16, epochs=2, batch_size=50, lr=4e-3, warmup_epochs=0,
            smoothing=0.0, threads=1, log_interval=1000, subset=300, eval_subset=100)  # fmt: skip


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(argv)


def test_every_field_has_a_flag_with_its_default_in_the_help():
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    dests = {a.dest for a in parser._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= dests
    text = " ".join(parser.format_help().split())
    assert "--cooldown-epochs" in text and "(default: 0)" in text and "(default: adamw)" in text


def test_timm_spellings_and_yaml_strings_are_accepted(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lr: 1e-3\nwarmup_epochs: '2'\ncooldown_epochs: 10\nchannels_last: 'true'\n")  # PyYAML: strings
    cfg = config_from_args(_parse(["--wd", "0.01", "-j", "2", "-b", "64", "--no-channels-last"]), str(recipe))
    assert (cfg.lr, cfg.warmup_epochs, cfg.cooldown_epochs, cfg.weight_decay, cfg.workers, cfg.batch_size) == (
        1e-3, 2, 10, 0.01, 2, 64)
    assert cfg.channels_last is False  # the flag overrides the recipe


def test_eval_follows_the_model_data_config_for_imagefolder():
    folder = dataset_spec("imagefolder")
    assert eval_data_config(TrainConfig(model="starnet_s1"), folder) == {"img_size": 224, "interpolation": "bicubic",
                                                                         "crop_pct": 0.875}  # fmt: skip
    override = TrainConfig(model="starnet_s1", crop_pct=1.0, interpolation="bilinear", img_size=256)
    assert eval_data_config(override, folder) == {"img_size": 256, "interpolation": "bilinear", "crop_pct": 1.0}
    small = eval_data_config(TrainConfig(model="starnet_s1"), dataset_spec("fashion-mnist"))
    assert small == {"img_size": 28, "interpolation": "bilinear", "crop_pct": 1.0}  # native size: no crop


def _image_folder(root, classes=3, per_class=6, size=20):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"class_{c}"
            d.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(60 + 70 * c, 20, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(d / f"{i}.png")


def test_imagefolder_training_builds_a_classifier_for_its_classes(tmp_path):
    _image_folder(tmp_path / "data")
    cfg = TrainConfig(model="starnet_s050", data="imagefolder", data_dir=str(tmp_path / "data"), img_size=32,
                      epochs=1, batch_size=6, warmup_epochs=0, threads=1, output=str(tmp_path / "run"))  # fmt: skip
    train(cfg, log=lambda m: None)
    weights, _ = load_run_state(tmp_path / "run")
    assert weights["head.weight"].shape == (3, 128)  # 3 class folders, not an Identity head


def test_extending_a_finished_run_replans_the_schedule(tmp_path):
    run, fresh = tmp_path / "run", tmp_path / "fresh"
    train(TrainConfig(**TINY, output=str(run)), log=lambda m: None)
    messages = []
    train(TrainConfig(resume=str(run), epochs=3, threads=2), log=messages.append)
    assert any("changed: epochs: 2 -> 3, threads: 1 -> 2" in m for m in messages)
    assert any(re.search(r"re-planned for 3 epochs .* epochs 2\.\.2", m) for m in messages)
    rows = _read_summary(run / "summary.csv", 99)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    saved = yaml.safe_load((run / "args.yaml").read_text())
    assert saved["epochs"] == 3 and saved["threads"] == 2
    train(TrainConfig(**{**TINY, "epochs": 3}, output=str(fresh)), log=lambda m: None)
    # epoch 2 starts where a 3-epoch schedule is at that update: the re-planned curve, not the old one
    assert float(rows[2]["lr"]) == pytest.approx(float(_read_summary(fresh / "summary.csv", 99)[2]["lr"]))


def test_resumable_options_are_the_documented_ones():
    assert set(RESUMABLE) == {"data_dir", "epochs", "workers", "log_interval", "threads", "time_limit", "tta_flip",
                              "tta_shift", "eval_interval"}


def test_a_lost_summary_is_rebuilt_from_the_state_and_temp_files_are_removed(tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(**TINY, output=str(run)), log=lambda m: None)
    expected = _read_summary(run / "summary.csv", 99)
    (run / "summary.csv").unlink()  # a kill between the state (commit point) and summary.csv
    (run / ".last.safetensors.abc123.tmp").write_bytes(b"half a file")  # a kill inside an atomic write
    messages = []
    train(TrainConfig(resume=str(run), epochs=3), log=messages.append)
    rows = _read_summary(run / "summary.csv", 99)
    assert rows[:2] == expected and len(rows) == 3
    assert not list(run.glob(".*.tmp")) and any("removed 1 temp file" in m for m in messages)
    as_csv = [{k: "" if v is None else str(v) for k, v in r.items()} for r in load_run_state(run)[1]["rows"]]
    assert as_csv == rows  # the commit point carries the rows


def test_local_weights_load_the_timm_way(tmp_path):
    import timm
    from safetensors.torch import save_file

    import starquad

    model = starquad.create_model("quadranet_xxs36", num_classes=5)
    path = tmp_path / "w.safetensors"
    save_file({f"_orig_mod.{k}": v.contiguous() for k, v in model.state_dict().items()}, str(path))  # compiled keys
    overlay = dict(file=str(path))
    a = timm.create_model("quadranet_xxs36", num_classes=5, pretrained=True, pretrained_cfg_overlay=overlay)
    b = starquad.create_model("quadranet_xxs36", num_classes=5, checkpoint_path=str(path))
    for m in (a, b):
        assert all(torch.equal(m.state_dict()[k], v) for k, v in model.state_dict().items())


def test_an_option_given_on_the_command_line_counts_even_at_its_default():
    from starquad.cli import build_parser
    from starquad.train.config import asked_on_command_line, resume_config

    saved = TrainConfig(**{**TINY, "epochs": 3})
    args = build_parser().parse_args(["train", "--resume", "runs/x", "--epochs", "10"])  # 10 is the default
    given = config_from_args(args)
    merged, changes = resume_config(saved, given, asked_on_command_line(args))
    assert merged.epochs == 10 and changes == ["epochs: 3 -> 10"]
    assert resume_config(saved, given)[0].epochs == 3  # API default: a value at its default is not a request
