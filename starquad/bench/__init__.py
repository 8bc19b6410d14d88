"""Measurements of models: FLOPs, latency (several backends, roofline), throughput, memory, the block study."""

from starquad.bench.flops import FlopCount, count_flops, model_stats
from starquad.bench.latency import LatencyStats, time_call, time_forward
from starquad.bench.table import markdown_table

__all__ = [
    "FlopCount",
    "LatencyStats",
    "count_flops",
    "markdown_table",
    "model_stats",
    "time_call",
    "time_forward",
]
