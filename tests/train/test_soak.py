"""SIGKILL soak of ``starquad train``: killed again and again, each time resumed; the result must not change.

Kills land at random moments during training (a random delay after an epoch's log line) and exactly inside
checkpoint writes (before the n-th rename of the process, when a temp file is on disk and the new file is not
yet in place). After each kill the run continues with ``--resume`` (or starts again when it died before its
first checkpoint). The end state must equal an uninterrupted run: the same ``summary.csv`` rows (timings
aside), bitwise the same final weights, and no temp file left behind.
"""

import csv
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--model", "starnet_s050", "--data", "synthetic", "--img-size", "16", "--epochs", "10", "-b", "50",
        "--lr", "4e-3", "--smoothing", "0", "--threads", "1", "--log-interval", "1000"]  # fmt: skip

# Runs the CLI; with SOAK_KILL_AT_RENAME=n it SIGKILLs itself just before its n-th os.replace (mid-checkpoint).
_DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    kill_at = int(os.environ.get("SOAK_KILL_AT_RENAME", "0"))
    if kill_at:
        real_replace, calls = os.replace, [0]
        def replace(*a, **k):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(*a, **k)
        os.replace = replace
    from starquad.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _start(run: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    resume = (run / "last.state.pt").is_file()
    argv = ["train", "--resume", str(run)] if resume else ["train", *ARGS, "--output", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-c", _DRIVER, *argv], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)  # fmt: skip


def _kill_after_an_epoch_line(proc: subprocess.Popen, rng: random.Random) -> bool:
    """SIGKILL ``proc`` a random 0–0.6 s after its next 'epoch N:' line; False if it finished first."""
    for line in proc.stderr:
        if line.startswith("epoch ") and ":" in line.split()[1]:
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return proc.returncode == -signal.SIGKILL
    proc.wait()
    return False


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "summary.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k not in ("epoch_seconds", "images_per_s")} for r in csv.DictReader(f)]


@pytest.mark.slow
def test_sigkill_soak_resumes_to_the_uninterrupted_result(tmp_path):
    full, soaked = tmp_path / "full", tmp_path / "soaked"
    proc = _start(full)
    proc.communicate(timeout=600)
    assert proc.returncode == 0

    rng = random.Random(15)
    # renames per epoch: best, last->prev, last, state, summary, curves (+ args.yaml once per start)
    plan = [("timer", None), ("rename", 9), ("timer", None), ("rename", 4), ("timer", None), ("rename", 11)]
    kills = []
    for kind, n in plan:
        proc = _start(soaked, {"SOAK_KILL_AT_RENAME": str(n)} if kind == "rename" else None)
        if kind == "timer":
            killed = _kill_after_an_epoch_line(proc, rng)
        else:
            proc.communicate(timeout=600)
            killed = proc.returncode == -signal.SIGKILL
        kills.append((kind, n, killed))
    print(f"soak: {sum(k for _, _, k in kills)} kills: {kills}")  # shown with pytest -s
    assert sum(k for _, _, k in kills) >= 5, kills
    if len(_rows(soaked)) < 10:  # what the kills left to do
        proc = _start(soaked)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]

    assert _rows(soaked) == _rows(full)
    a, b = load_file(full / "last.safetensors"), load_file(soaked / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(soaked.glob(".*.tmp"))
