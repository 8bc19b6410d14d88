"""Shared test helpers for starquad.nas (a plain module: pytest puts tests/nas on sys.path)."""

from starquad.nas import get_space
from starquad.nas.latency import LatencyTable, Protocol, fingerprint

SPACE = get_space("quadranet", layers=(1, 1, 2, 1))


def synthetic_table(space=SPACE) -> LatencyTable:
    """A table of ``space`` with entries 1, 2, 3, … ms in key order (skips 0): easy sums, no timing."""
    protocol = Protocol()
    table = LatencyTable(space.record(), protocol, fingerprint(protocol))
    keys = list(table.fixed_keys(space))
    size = protocol.img_size // space.stem_stride
    for stage, width in enumerate(space.widths):
        size = size if stage == 0 else size // 2
        keys += [f"{c.name}@{width}x{size}x{size}" for c in space.candidates]
    table.entries = {k: {"ms": 0.0 if k.startswith("skip@") else float(i + 1), "cv": 0.01, "runs": 50}
                     for i, k in enumerate(keys)}  # fmt: skip
    return table
