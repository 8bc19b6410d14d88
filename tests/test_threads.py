"""Every public bench / train / eval entry point leaves ``torch.get_num_threads()`` as it found it.

Each call asks for a thread count different from the one in force, and some calls fail on purpose half-way
(a bad model name after the threads were set): the count must come back either way."""

import pytest
import torch

from starquad.bench.backends import gemm_peak_gflops, make_runner
from starquad.bench.blocks import BlockStudyConfig, run_block_study
from starquad.bench.suite import LatencyConfig, bench_flops, bench_latency, bench_memory, bench_throughput
from starquad.errors import StarquadError
from starquad.models import create_model
from starquad.runtime import torch_threads
from starquad.train import TrainConfig, train
from starquad.train.eval import evaluate_checkpoint

TINY = dict(model="starnet_s050", data="synthetic", img_size=16, epochs=1, batch_size=100, warmup_epochs=0,
            subset=200, eval_subset=100, log_interval=1000)  # fmt: skip


@pytest.fixture()
def found():
    """The count in force during a test: 1 if torch uses more, else 2 (so every call below asks for another)."""
    before = torch.get_num_threads()
    mine = 1 if before > 1 else 2
    torch.set_num_threads(mine)
    yield mine
    torch.set_num_threads(before)


def _run_once(**kw):
    run = make_runner(create_model("starnet_s050", num_classes=10), "eager", torch.randn(1, 3, 32, 32), **kw)
    return run()


CALLS = {
    "bench_latency": lambda t, p: bench_latency(["starnet_s050"], LatencyConfig(threads=t, warmup=0, runs=2,
                                                                                img_size=32)),
    "bench_latency_bad_name": lambda t, p: bench_latency(["starnet_s9"], LatencyConfig(threads=t, runs=1)),
    "bench_throughput": lambda t, p: bench_throughput(["starnet_s050"], batch=2, threads=t, img_size=32, runs=1),
    "bench_memory": lambda t, p: bench_memory(["starnet_s050"], img_size=32, rss=False),
    "bench_flops": lambda t, p: bench_flops(["starnet_s050"]),
    "run_block_study": lambda t, p: run_block_study(BlockStudyConfig(blocks=("conv",), channels=(32,), batch=1, size=8,
                                                                     depth=1, rounds=1, threads=t, measure_rss=False)),
    "gemm_peak_gflops": lambda t, p: gemm_peak_gflops("eager", threads=t, sizes=(64,), runs=2),
    "make_runner_and_run": lambda t, p: _run_once(threads=t),
    "train": lambda t, p: train(TrainConfig(**TINY, threads=t, output=str(p / "run")), log=lambda m: None),
    "train_bad_model": lambda t, p: train(TrainConfig(**{**TINY, "model": "starnet_s9"}, threads=t,
                                                      output=str(p / "bad")), log=lambda m: None),
    "evaluate_checkpoint": lambda t, p: (train(TrainConfig(**TINY, output=str(p / "e")), log=lambda m: None),
                                         evaluate_checkpoint(TrainConfig(**TINY, threads=t),
                                                             p / "e" / "best.safetensors")),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CALLS))
def test_threads_are_restored(name, found, tmp_path):
    asked = found + 1
    try:
        CALLS[name](asked, tmp_path)
    except StarquadError:
        assert name.endswith("_bad_name") or name.endswith("_bad_model")
    assert torch.get_num_threads() == found


def test_torch_threads_holds_inside_and_restores_on_error(found):
    with torch_threads(found + 1) as n:
        assert n == torch.get_num_threads() == found + 1
    with pytest.raises(RuntimeError), torch_threads(found + 2):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == found
    with pytest.raises(StarquadError, match="threads must be an integer >= 1"), torch_threads(0):
        pass
