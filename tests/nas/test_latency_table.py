"""The latency table: storage, machine fingerprint, unknown ops, the predictor, and a small real build."""

import json
import random

import pytest

from starquad.errors import ConfigError
from starquad.nas import get_space, random_arch
from starquad.nas.latency import LatencyTable, Protocol, UnknownOpError, build_table, fingerprint, validate_table
from starquad.nas.space import layer_ops

SPACE = get_space("quadranet", layers=(1, 1, 2, 1))


def _table() -> LatencyTable:
    """Entries 1, 2, 3, … ms in key order: easy sums, no timing."""
    protocol = Protocol()
    table = LatencyTable({"name": SPACE.name, "widths": list(SPACE.widths), "layers": list(SPACE.layers),
                          "stem_stride": SPACE.stem_stride}, protocol, fingerprint(protocol))  # fmt: skip
    keys = list(table.fixed_keys(SPACE))
    size = protocol.img_size // SPACE.stem_stride
    for stage, width in enumerate(SPACE.widths):
        size = size if stage == 0 else size // 2
        keys += [f"{c.name}@{width}x{size}x{size}" for c in SPACE.candidates]
    table.entries = {k: {"ms": float(i + 1), "cv": 0.01, "runs": 50} for i, k in enumerate(keys)}
    return table


def test_predictor_is_the_sum_of_entries_when_the_correction_is_zero():
    table = _table()
    arch = random_arch(SPACE, random.Random(0))
    keys = table.op_keys(SPACE, arch)
    assert len(keys) == 5 + SPACE.num_layers  # stem, 3 downsamplers, head, one per layer
    assert table.predict_ms(SPACE, arch) == pytest.approx(sum(table.entries[k]["ms"] for k in keys))
    table.overhead_ms, table.scale = 0.5, 0.8
    assert table.predict_ms(SPACE, arch) == pytest.approx(0.5 + 0.8 * table.naive_ms(SPACE, arch))


def test_an_op_the_table_lacks_is_named_never_zero():
    table = _table()
    arch = [0] * SPACE.num_layers
    op = layer_ops(SPACE, arch, 28)[2]
    del table.entries[f"{op.op}@{'x'.join(map(str, op.input_shape))}"]
    with pytest.raises(UnknownOpError, match=r"no entry for 'quadra_k3_e2@96x3x3'"):
        table.predict_ms(SPACE, arch)


def test_table_round_trips_and_refuses_another_machine(tmp_path):
    table = _table()
    table.overhead_ms, table.scale = 0.25, 0.9
    path = table.save(tmp_path / "t.json")
    loaded = LatencyTable.load(path)
    assert loaded == table and json.loads(path.read_text())["format"] == 1
    data = json.loads(path.read_text())
    data["fingerprint"]["cpu"] = "Some Other CPU"
    (tmp_path / "other.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"another machine or setup \(cpu: table 'Some Other CPU'.* rebuild it here"):
        LatencyTable.load(tmp_path / "other.json")
    assert LatencyTable.load(tmp_path / "other.json", check_machine=False).fingerprint["cpu"] == "Some Other CPU"
    (tmp_path / "cut.json").write_text(path.read_text()[:50])
    with pytest.raises(ConfigError, match="not a starquad latency table"):
        LatencyTable.load(tmp_path / "cut.json")


@pytest.mark.slow
def test_a_small_real_build_and_validation():
    """Real timings (eager, few runs): every entry measured, the fit and the validation figures well-formed."""
    protocol = Protocol(runtime="eager", threads=1, warmup=1, runs=5, retries=0)
    space = get_space("interaction", layers=(1, 1, 1, 1))
    table = build_table(space, protocol, fit_archs=4, log=lambda m: None)
    non_skip = [c for c in space.candidates if c.kind != "skip"]
    assert len(table.entries) == 5 + len(space.candidates) * 4
    assert all(e["ms"] > 0 and e["runs"] == 5 for k, e in table.entries.items() if not k.startswith("skip"))
    assert len(non_skip) == 18 and table.scale > 0 and table.fit["archs"] == 4
    result = validate_table(table, n=4, log=lambda m: None)
    assert result["n"] == 4 and len(result["measured_ms"]) == 4
    assert 0 <= result["within_5pct"] <= result["within_10pct"] <= 1 and -1 <= result["spearman"] <= 1
