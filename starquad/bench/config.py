"""The options of every benchmark, declared once (:mod:`starquad.options`): the ``starquad bench`` flags, their
checks and the presets (``--protocol paper``) come from here. Torch-free: the CLI builds its parsers without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from starquad.bench.backends import BACKENDS, PRECISIONS, get_backend
from starquad.errors import ConfigError
from starquad.options import Options, option

__all__ = ["BLOCK_VARIANTS", "PAPER_PROTOCOL", "SHARED_MODES", "BlockStudyConfig", "FlopsConfig", "LatencyConfig",
           "MemoryConfig", "ThroughputConfig"]  # fmt: skip

IMG_SIZE_HELP = "input side (default: each model's cfg input size)"


@dataclass(frozen=True)
class LatencyConfig(Options):
    """How to time: backends, batch, threads, warm-up and timed runs, which statistic is 'the' latency."""

    HELP_COMMAND: ClassVar[str] = "starquad bench latency --help"

    backends: tuple[str, ...] = option(("eager",), "backends", flags=("--backend",), choices=BACKENDS)
    batch: int = option(1, "batch size", low=1, high=65_536)
    img_size: int | None = option(None, IMG_SIZE_HELP, low=16, high=4096)
    threads: int = option(2, "intra-op threads", low=1, high=1024)
    warmup: int = option(10, "untimed runs first", low=0, high=1_000_000)
    runs: int = option(50, "timed runs", low=1, high=1_000_000)
    statistic: str = option("median", "the latency: median, or mean (the StarNet paper's)", choices=("median", "mean"))
    precision: str = option("fp32", "fp32; bf16 (eager, compile: autocast; openvino: inference precision); int8 "
                            "(onnxruntime, openvino: statically quantized as 'export --int8' does it, calibrated on "
                            "generated images: speed only)", choices=PRECISIONS)  # fmt: skip
    reparameterize: bool = option(True, "time the inference form (MobileOne, FastViT re-parameterised, BatchNorm, "
                                  "layer scales and LayerNorm affines folded); --no-reparam: the models as built",
                                  flags=("--reparam",))  # fmt: skip
    channels_last: bool = option(False, "channels-last memory (eager, compile)")
    roofline: bool = option(False, "add the achieved GFLOP/s and its share of this machine's square-GEMM peak "
                            "measured with the same backend and threads")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        for b in self.backends:
            get_backend(b, self.precision)
        if self.roofline and self.precision == "int8":
            raise ConfigError("the roofline compares with the fp32/bf16 GEMM peak; time int8 without --roofline")


# The StarNet paper's latency method: ONNX Runtime, batch 1, 50 warm-up runs, mean of 500.
PAPER_PROTOCOL: dict[str, Any] = dict(backends=("onnxruntime",), batch=1, warmup=50, runs=500, statistic="mean")
LatencyConfig.PRESETS = {"paper": PAPER_PROTOCOL}


@dataclass(frozen=True)
class ThroughputConfig(Options):
    """Samples per second in PyTorch eager, inference and one training step."""

    HELP_COMMAND: ClassVar[str] = "starquad bench throughput --help"

    batch: int = option(32, "batch size", low=1, high=65_536)
    threads: int = option(2, "torch threads", low=1, high=1024)
    img_size: int | None = option(None, IMG_SIZE_HELP, low=16, high=4096)
    runs: int = option(10, "timed runs", low=1, high=1_000_000)
    train: bool = option(True, "also time a training step (--no-train: inference only)")
    channels_last: bool = option(False, "channels-last memory")


@dataclass(frozen=True)
class MemoryConfig(Options):
    """Activation bytes a training step saves, and its peak-RSS rise."""

    HELP_COMMAND: ClassVar[str] = "starquad bench memory --help"

    batch: int = option(2, "batch size", low=1, high=65_536)
    img_size: int | None = option(None, IMG_SIZE_HELP, low=16, high=4096)
    rss: bool = option(True, "measure the peak-RSS rise (--no-rss: skip it)")


@dataclass(frozen=True)
class FlopsConfig(Options):
    """Params and FLOPs beside the papers' figures."""

    HELP_COMMAND: ClassVar[str] = "starquad bench flops --help"

    img_size: int | None = option(None, IMG_SIZE_HELP + "; the papers' figures are shown at that size only", low=16,
                                  high=4096)  # fmt: skip
    reparameterize: bool = option(True, "count the inference form that 'bench latency' times (--no-reparam: the "
                                  "models as built, the training form)", flags=("--reparam",))  # fmt: skip


# The block study's block types: key -> (table name, MixerBlock arguments)
BLOCK_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "skip": ("SkipBlock", dict(kind="skip")),
    "conv": ("ConvBlock", dict(kind="conv")),
    "swin": ("SwinBlock", dict(kind="swin")),
    "hor": ("HorBlock (order 3)", dict(kind="hor", order=3)),
    "quadra": ("QuadraBlock", dict(kind="quadra", memory_efficient=False)),
    "quadra_me": ("QuadraBlock, memory-efficient", dict(kind="quadra", memory_efficient=True)),
}
SHARED_MODES = ("lean", "plain")


@dataclass
class BlockStudyConfig(Options):
    """What to run. The paper: batch 64, 24 blocks, 64 and 128 channels (GPU); CPU defaults are smaller."""

    HELP_COMMAND: ClassVar[str] = "starquad bench blocks --help"

    blocks: tuple[str, ...] = option(tuple(BLOCK_VARIANTS), "block types", choices=tuple(BLOCK_VARIANTS))
    channels: tuple[int, ...] = option((64, 128), "widths (multiples of 32: the window attention's heads)", low=32,
                                       high=4096)  # fmt: skip
    batch: int = option(8, "batch size (the paper used 64 on a GPU)", low=1, high=65_536)
    size: int = option(56, "feature-map side", low=1, high=4096)
    depth: int = option(24, "blocks per stack", low=1, high=10_000)
    rounds: int = option(5, "timed rounds after one warm-up", low=1, high=10_000)
    threads: int = option(2, "torch threads", low=1, high=1024)
    shared: tuple[str, ...] = option(("lean",), "shared parts with the lean MLP backward, plain autograd, or both",
                                     choices=SHARED_MODES)  # fmt: skip
    channels_last: bool = option(True, "channels-last memory (--no-channels-last: NCHW)")
    seed: int = option(0, "seed of the blocks' weights and inputs", low=0)
    measure_rss: bool = option(True, "measure the peak-RSS rise (--no-rss: skip it)", flags=("--rss",))

    def validate(self) -> None:
        super().validate()
        if any(c % 32 for c in self.channels):
            raise ConfigError(f"channels must be multiples of 32 (window-attention heads), got {self.channels}")
