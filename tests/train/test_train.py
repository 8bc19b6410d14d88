import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import starquad.train.runner as runner
from starquad.errors import ConfigError
from starquad.models.checkpoint import CheckpointError
from starquad.train import NonFiniteLossError, TrainConfig, load_run_state, save_run_state, train

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(model="starnet_s050", data="synthetic", img_size=16, epochs=3, batch_size=50, lr=4e-3, warmup_epochs=1,
            smoothing=0.0, threads=2, log_interval=1000)  # fmt: skip


def _rows(run_dir):
    with open(Path(run_dir) / "summary.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("epoch_seconds", "images_per_s")} for r in csv.DictReader(f)]


def test_tiny_run_learns_and_writes_its_run_directory(tmp_path):
    result = train(TrainConfig(**TINY, output=str(tmp_path)), log=lambda m: None)
    rows = _rows(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert result["top1"] > 30  # 10 classes: chance is 10%
    assert {"args.yaml", "summary.csv", "last.safetensors", "last.state.pt", "best.safetensors"} <= {
        p.name for p in tmp_path.iterdir()
    }
    weights, state = load_run_state(tmp_path)
    assert state["epoch"] == 2 and set(weights) == set(load_file(tmp_path / "best.safetensors"))


@pytest.mark.parametrize("batched", [False, True], ids=["per-image", "batch-aug"])
def test_resume_replays_the_uninterrupted_run(tmp_path, monkeypatch, batched):
    full, cut = tmp_path / "full", tmp_path / "cut"
    tiny = {**TINY, **(dict(batch_aug=True, color_jitter=0.0, reprob=0.5) if batched else {})}
    train(TrainConfig(**tiny, output=str(full)), log=lambda m: None)
    original = runner.train_one_epoch

    def interrupted(*args, **kwargs):
        if kwargs["epoch"] == 2:  # die before epoch 2 finishes
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**tiny, output=str(cut)), log=lambda m: None)
    assert [int(r["epoch"]) for r in _rows(cut)] == [0, 1]
    monkeypatch.setattr(runner, "train_one_epoch", original)
    train(TrainConfig(resume=str(cut)), log=lambda m: None)
    assert _rows(cut) == _rows(full)
    a, b = load_file(full / "last.safetensors"), load_file(cut / "last.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    original = runner.train_one_epoch

    def poisoned(*args, **kwargs):
        if kwargs["epoch"] == 1:
            args = (*args[:3], lambda out, y: out.sum() * float("nan"))
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "train_one_epoch", poisoned)
    with pytest.raises(NonFiniteLossError, match="loss is nan at epoch 1"):
        train(TrainConfig(**TINY, output=str(tmp_path)), log=lambda m: None)
    assert load_run_state(tmp_path)[1]["epoch"] == 0


_KILLER = textwrap.dedent(
    """
    import os, signal, sys, torch
    import starquad.train.state as st
    run, kill_at = sys.argv[1], int(sys.argv[2])
    calls = {"n": 0}
    real_write, real_replace = st.atomic_write, st.os.replace
    def die_if_due():
        calls["n"] += 1
        if calls["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    def write(*a, **k):
        die_if_due()
        return real_write(*a, **k)
    class _Os:  # only the rename inside save_run_state goes through this
        def __getattr__(self, name):
            return getattr(os, name)
        def replace(self, *a):
            die_if_due()
            return real_replace(*a)
    st.save_run_state(run, {"w": torch.zeros(4)}, {"epoch": 0})
    st.atomic_write, st.os = write, _Os()
    st.save_run_state(run, {"w": torch.ones(4)}, {"epoch": 1})
    """
)


@pytest.mark.parametrize("kill_at", [1, 2, 3])  # before the rename, before the weights, before the state
def test_sigkill_during_a_checkpoint_write_leaves_a_loadable_checkpoint(tmp_path, kill_at):
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(tmp_path), str(kill_at)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    weights, state = load_run_state(tmp_path)
    assert state["epoch"] == 0 and torch.equal(weights["w"], torch.zeros(4))


def test_truncated_checkpoint_is_reported_not_loaded(tmp_path):
    save_run_state(tmp_path, {"w": torch.arange(1000.0)}, {"epoch": 0})
    data = (tmp_path / "last.safetensors").read_bytes()
    (tmp_path / "last.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"no weights file matches .* refusing to load"):
        load_run_state(tmp_path)
    (tmp_path / "last.state.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_run_state(tmp_path)


@pytest.mark.slow
def test_two_process_torchrun_matches_one_process(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(textwrap.dedent(
        """
        model: quadranet_xxs36
        model_kwargs: {depths: [1, 1, 1, 1]}
        data: synthetic
        img_size: 32
        epochs: 2
        warmup_epochs: 0
        lr: 0.002
        smoothing: 0.0
        no_aug: true
        threads: 1
        """
    ))  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "starquad", "train", "-c", str(recipe),
           "-b", "20", "--output", str(tmp_path / "ddp")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    one = [sys.executable, "-m", "starquad", "train", "-c", str(recipe), "-b", "40", "--output", str(tmp_path / "one")]
    proc = subprocess.run(one, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ddp, single = _rows(tmp_path / "ddp"), _rows(tmp_path / "one")
    for a, b in zip(ddp, single, strict=True):
        for key in ("train_loss", "eval_loss", "top1"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-3, abs=1e-3), (key, a, b)
    wa, wb = load_file(tmp_path / "ddp" / "last.safetensors"), load_file(tmp_path / "one" / "last.safetensors")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-4)


def _epochs_take(monkeypatch, *seconds):
    """A clock that advances ``seconds[i]`` during training epoch i (the last value after that) and stands still
    otherwise."""
    now, count = [0.0], [0]
    original = runner.train_one_epoch

    def timed(*args, **kwargs):
        now[0] += seconds[min(count[0], len(seconds) - 1)]
        count[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_clock", lambda: now[0])
    monkeypatch.setattr(runner, "train_one_epoch", timed)


def test_a_time_limit_replans_the_schedule_to_the_epochs_that_fit(tmp_path, monkeypatch):
    """10 s per epoch and 35 s: after the warm-up epoch the 10-epoch schedule becomes a 3-epoch one, so the run is
    the plain 3-epoch run to the bit, and args.yaml says 3 epochs for a --resume."""
    plain, limited = tmp_path / "plain", tmp_path / "limited"
    base = {**TINY, "epochs": 10}
    train(TrainConfig(**{**base, "epochs": 3}, output=str(plain)), log=lambda m: None)
    _epochs_take(monkeypatch, 10.0)
    said = []
    train(TrainConfig(**base, time_limit=35, output=str(limited)), log=said.append)
    assert _rows(limited) == _rows(plain)
    assert any("time limit 35 s: 10 s used after 1 epoch(s), so the schedule is re-planned for 3 epochs" in m
               for m in said)  # fmt: skip
    assert yaml.safe_load((limited / "args.yaml").read_text())["epochs"] == 3
    with pytest.raises(ConfigError, match="already finished all 3 epochs"):
        train(TrainConfig(resume=str(limited)), log=lambda m: None)


def test_a_time_limit_that_fits_no_more_epochs_stops_the_run(tmp_path, monkeypatch):
    _epochs_take(monkeypatch, 10.0)
    said = []
    train(TrainConfig(**{**TINY, "epochs": 10}, time_limit=15, output=str(tmp_path)), log=said.append)
    assert [int(r["epoch"]) for r in _rows(tmp_path)] == [0]
    assert any("the run stops here" in m for m in said)


def test_a_time_limit_plans_back_up_when_the_machine_speeds_up(tmp_path, monkeypatch):
    """A slow first epoch (30 s, then 10 s each) must not decide the run: 95 s → 3, then 4, then 5 epochs (the
    ceiling), re-planned from the last three epochs' mean time."""
    _epochs_take(monkeypatch, 30.0, 10.0)
    said = []
    train(TrainConfig(**{**TINY, "epochs": 5}, time_limit=95, output=str(tmp_path)), log=said.append)
    plans = [int(m.split("re-planned for ")[1].split()[0]) for m in said if "re-planned for" in m]
    assert plans == [3, 4, 5]
    assert [int(r["epoch"]) for r in _rows(tmp_path)] == [0, 1, 2, 3, 4]
    assert yaml.safe_load((tmp_path / "args.yaml").read_text())["epochs"] == 5


@pytest.mark.parametrize(("elapsed", "seconds", "epoch", "total", "expected"), [
    (100, [10, 10], 2, 12, 12),   # 15 more fit, capped by the ceiling: unchanged
    (100, [50, 50], 2, 10, 5),    # 3 more fit: shorter
    (100, [50, 50], 2, 4, 4),     # 3 more fit (150 s left), but not with 15% to spare (3 × 57.5): unchanged
    (100, [40, 40], 2, 4, 5),     # 3 × 46 = 138 ≤ 150 left: one longer
    (100, [10, 10], 2, 4, 12),    # plenty: back up to the ceiling
    (240, [10, 100], 5, 8, 5),    # nothing fits: stop after the finished epochs
])  # fmt: skip
def test_replan_epochs_shortens_at_once_and_lengthens_only_with_room(elapsed, seconds, epoch, total, expected):
    assert runner.replan_epochs(250, elapsed, seconds, epoch, total, ceiling=12) == expected


@pytest.mark.parametrize(("epoch", "total", "interval", "expected"), [
    (0, 3, 1, True), (0, 3, 2, False), (1, 3, 2, True), (2, 3, 2, True),  # every 2nd and the last
    (0, 3, 0, False), (1, 3, 0, False), (2, 3, 0, True),                  # 0: the last only
])  # fmt: skip
def test_evaluates_every_nth_epoch_and_the_last(epoch, total, interval, expected):
    assert runner.evaluates(epoch, total, interval) is expected


@pytest.mark.parametrize(("elapsed", "seconds", "epoch", "total", "eval_s", "interval", "expected"), [
    (100, [50, 50], 2, 10, 0, 1, 5),     # no evaluation cost: as before (3 more fit)
    (100, [40, 40], 2, 10, 10, 1, 4),    # 10 s an evaluation, each epoch: 2 × 40 + 3 × 10 ≤ 150 < 3 × 40 + 4 × 10
    (100, [40, 40], 2, 10, 10, 0, 5),    # the last only: 3 × 40 + 10 = 130 ≤ 150
    (100, [40, 40], 2, 10, 30, 2, 4),    # every 2nd: epochs 2, 3 and evaluations of 1, 3: 80 + 60 = 140 ≤ 150
    (240, [5, 5], 5, 8, 20, 0, 5),       # not even one more epoch and the pending evaluation: stop here
])  # fmt: skip
def test_replan_epochs_charges_the_evaluations_a_plan_has_left(elapsed, seconds, epoch, total, eval_s, interval,
                                                              expected):  # fmt: skip
    assert runner.replan_epochs(250, elapsed, seconds, epoch, total, 12, eval_s, interval) == expected


def test_eval_interval_skips_evaluations_but_not_the_last_and_changes_no_weight(tmp_path):
    plain, sparse = tmp_path / "plain", tmp_path / "sparse"
    train(TrainConfig(**TINY, output=str(plain)), log=lambda m: None)
    said = []
    result = train(TrainConfig(**TINY, eval_interval=2, output=str(sparse)), log=said.append)
    rows, expected = _rows(sparse), _rows(plain)
    assert [r["top1"] != "" for r in rows] == [False, True, True]
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in expected]
    assert rows[1:] == expected[1:] and rows[0]["eval_loss"] == rows[0]["top5"] == ""
    assert result["top1"] == float(expected[-1]["top1"]) and any("not evaluated" in m for m in said)
    wa, wb = load_file(plain / "last.safetensors"), load_file(sparse / "last.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert load_run_state(sparse)[1]["best_top1"] == max(float(r["top1"]) for r in expected[1:])


@pytest.mark.parametrize(("limit", "epochs"), [(58, 4), (20, 1)])
def test_a_time_limit_leaves_room_for_the_final_evaluation(tmp_path, monkeypatch, limit, epochs):
    """10 s an epoch, 1 s an evaluated batch (4 batches), evaluation after the last epoch only. After epoch 0 (11 s
    with the one-batch probe) 58 s fit 4 epochs and the final 4 s evaluation (5 would without it); 20 s fit only
    the finished epoch, which is then evaluated: the run ends inside the limit with a top-1 either way."""
    now = [0.0]
    train_epoch, evaluate = runner.train_one_epoch, runner.evaluate

    def timed_epoch(*args, **kwargs):
        now[0] += 10.0
        return train_epoch(*args, **kwargs)

    def timed_eval(model, loader, *args, **kwargs):
        batches = list(loader)
        now[0] += 1.0 * len(batches)
        return evaluate(model, batches, *args, **kwargs)

    monkeypatch.setattr(runner, "_clock", lambda: now[0])
    monkeypatch.setattr(runner, "train_one_epoch", timed_epoch)
    monkeypatch.setattr(runner, "evaluate", timed_eval)
    train(TrainConfig(**{**TINY, "epochs": 10}, eval_interval=0, time_limit=limit, output=str(tmp_path)),
          log=lambda m: None)  # fmt: skip
    rows = _rows(tmp_path)
    assert len(rows) == epochs and [r["top1"] != "" for r in rows] == [False] * (epochs - 1) + [True]
    assert now[0] <= limit
