"""The report's trainings side by side: the same numbers one at a time, two at a time, on Ray, and after a worker
is killed mid-run; bad input named. Real (tiny) Fashion-MNIST trainings."""

import json
import multiprocessing
import os
import signal
import threading
import time

import pytest

from starquad.analysis.fmnist import FmnistBudget, fmnist_run
from starquad.analysis.pool import calibrate, estimate_seconds, train_all
from starquad.analysis.report import SectionContext
from starquad.errors import ConfigError, StarquadError

TINY = FmnistBudget(subset=300, eval_subset=300, epochs=1, seeds=2, batch_size=50)
NET = ("demonet_d12_w96", {"patch_size": 4, "width": 16, "depth": 1})


def _requests(out_dir, seeds=(0, 1, 2)):
    ctx = SectionContext(out_dir=out_dir, collecting=True)
    for s in seeds:
        fmnist_run(ctx, *NET, s, TINY)
    return ctx.pending


def _kept(out_dir) -> dict[str, tuple[float, float]]:
    results = {}
    for path in sorted((out_dir / "runs").glob("*.json")):
        r = json.loads(path.read_text())["result"]
        results[path.name] = (r["top1"], r["eval_loss"])
    return results


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq")
    train_all(_requests(out), workers=1, log=lambda m: None)
    return _kept(out)


def test_collect_pass_trains_nothing_and_names_each_run_once(tmp_path):
    requests = _requests(tmp_path)
    assert len(requests) == 3 and not (tmp_path / "runs").exists()
    assert {r.cfg.threads for r in requests} == {1} and len({r.kept for r in requests}) == 3


@pytest.mark.slow
def test_two_at_a_time_gives_bitwise_the_same_numbers(tmp_path, sequential):
    train_all(_requests(tmp_path), workers=2, log=lambda m: None)
    assert _kept(tmp_path) == sequential and len(sequential) == 3


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time (make test runs tests side by side)
def test_a_local_ray_cluster_gives_the_same_numbers(tmp_path, sequential):
    pytest.importorskip("ray")
    train_all(_requests(tmp_path), workers=2, ray_address="local", log=lambda m: None)
    assert _kept(tmp_path) == sequential


@pytest.mark.slow
def test_a_killed_worker_loses_only_its_run_and_the_rerun_matches(tmp_path, sequential):
    requests = _requests(tmp_path)
    errors = []

    def run():
        try:
            train_all(requests, workers=2, log=lambda m: None)
        except StarquadError as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(multiprocessing.active_children()) < 2:
        time.sleep(0.1)
    time.sleep(2.0)  # mid-run: torch imported, the data loading or the epoch under way
    os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert errors and "run the same command again" in str(errors[0])
    assert len(_kept(tmp_path)) < 3
    train_all(_requests(tmp_path), workers=2, log=lambda m: None)  # what is kept is not trained again
    assert _kept(tmp_path) == sequential


def test_bad_workers_and_unreachable_ray(tmp_path):
    requests = _requests(tmp_path, seeds=(0,))
    with pytest.raises(ConfigError, match="--workers must be a whole number >= 1"):
        train_all(requests, workers=0)
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match=r"no Ray cluster at '127\.0\.0\.1:1'.*ray start --head"):
        train_all(requests, ray_address="127.0.0.1:1")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_calibration_and_estimate(tmp_path):
    requests = _requests(tmp_path, seeds=(0, 1))
    wider = SectionContext(out_dir=tmp_path, collecting=True)
    fmnist_run(wider, NET[0], {**NET[1], "width": 32}, 0, TINY)
    cal = calibrate([*requests, *wider.pending], run_threads=1, cores=2)
    assert set(cal.runs_per_hour) == {1, 2} and all(v > 0 for v in cal.runs_per_hour.values())
    assert cal.best_workers in (1, 2) and cal.seconds_alone > 0
    assert len(cal.per_image) == 2 and cal.per_image[0][0] < cal.per_image[1][0]  # the light and the heavy network
    one, two = estimate_seconds(requests[:1], cal), estimate_seconds(requests, cal)
    assert two == pytest.approx(2 * one) and one > 0
    assert not list((tmp_path / "runs").glob("calib-*")) if (tmp_path / "runs").exists() else True
