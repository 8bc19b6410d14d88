"""Measurements of models: FLOPs, latency (several backends, roofline), throughput, memory, the block study.

Names resolve lazily (:mod:`starquad._lazy`), so the CLI can read the backend table without importing torch."""

from starquad._lazy import lazy_exports

_EXPORTS = {
    "FlopCount": "starquad.bench.flops",
    "count_flops": "starquad.bench.flops",
    "model_stats": "starquad.bench.flops",
    "LatencyStats": "starquad.bench.latency",
    "time_call": "starquad.bench.latency",
    "time_forward": "starquad.bench.latency",
    "markdown_table": "starquad.bench.table",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
