import json

import numpy as np
import pytest
from PIL import Image

from starquad.analysis import SectionResult, register_section, run_reproduce
from starquad.analysis import report as report_mod
from starquad.errors import ConfigError


@pytest.fixture
def toy_sections():
    @register_section("toy_ok", "Toy section that works", order=900)
    def ok(ctx):
        path = ctx.figure_path("toy_ok", "fig")
        Image.new("RGB", (4, 4)).save(path)
        return SectionResult({"value": np.float32(1.5)}, "all *fine*", figures=[path])

    @register_section("toy_fail", "Toy section that fails", order=901)
    def fail(ctx):
        raise RuntimeError("boom in toy section")

    yield
    for name in ("toy_ok", "toy_fail"):
        report_mod._SECTIONS.pop(name)


def test_failing_section_is_isolated(tmp_path, toy_sections):
    results = run_reproduce(
        tmp_path, sections=["toy_fail", "toy_ok"], command="starquad reproduce --x", log=lambda m: None
    )
    assert results["toy_fail"]["status"] == "failed" and "boom in toy section" in results["toy_fail"]["error"]
    assert results["toy_ok"]["status"] == "ok" and results["toy_ok"]["value"] == 1.5
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert set(on_disk) == {"_meta", "toy_fail", "toy_ok"}
    assert on_disk["_meta"]["command"] == "starquad reproduce --x" and "torch" in on_disk["_meta"]["versions"]
    report = (tmp_path / "report.md").read_text()
    assert "**FAILED**: `RuntimeError: boom in toy section`" in report
    assert "all *fine*" in report and "(toy_ok_fig.png)" in report


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown report section.*nope.*available: data"):
        run_reproduce(tmp_path, sections=["nope"])


def test_data_section(tmp_path):
    results = run_reproduce(tmp_path, sections=["data"], log=lambda m: None)
    data = results["data"]
    assert data["status"] == "ok"
    assert data["splits"]["train"]["count"] == 60000 and data["splits"]["test"]["count"] == 10000
    assert data["splits"]["train"]["per_class"] == [6000] * 10 and data["shape"] == [28, 28]
    for name in ("data_samples.png", "data_balance.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.width > 300
    report = (tmp_path / "report.md").read_text()
    assert "| train | 60000 | 6000–6000 | 1.000 |" in report and "![data: data_samples](data_samples.png)" in report
