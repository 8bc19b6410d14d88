"""The PyTorch deploy path: a verified AOTInductor package that runs with PyTorch alone."""

import subprocess
import sys

import pytest
import torch

from starquad.cli import main
from starquad.deploy import ExportError, export_pt2
from starquad.models import create_model

pytestmark = pytest.mark.slow  # every test compiles with Inductor (tens of seconds)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("starnet_s050", num_classes=7).eval()
    path = tmp_path_factory.mktemp("pt2") / "s050.pt2"
    return model, export_pt2(model, path, (3, 32, 32))


def test_package_reproduces_the_eager_model(package):
    model, result = package
    assert result.max_abs_diff <= 1e-4 and result.path.stat().st_size == result.size_bytes
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        expected = model(x)
    torch.save(x, result.path.with_suffix(".x.pt"))
    # a fresh interpreter that never imports starquad loads and runs the file
    code = (
        "import sys, torch\n"
        f"f = torch._inductor.aoti_load_package({str(result.path)!r})\n"
        f"x = torch.load({str(result.path.with_suffix('.x.pt'))!r}, weights_only=True)\n"
        f"torch.save(f(x), {str(result.path.with_suffix('.y.pt'))!r})\n"
        "assert not any(m.startswith('starquad') for m in sys.modules), 'starquad was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=result.path.parent, capture_output=True)
    got = torch.load(result.path.with_suffix(".y.pt"), weights_only=True)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_package_off_by_more_than_atol_is_not_written(tmp_path):
    torch.manual_seed(1)
    with pytest.raises(ExportError, match=r"differs from PyTorch's by .* > atol 0; nothing written"):
        export_pt2(create_model("starnet_s050", num_classes=3), tmp_path / "m.pt2", (3, 32, 32), atol=0.0)
    assert not (tmp_path / "m.pt2").exists()


def test_cli_picks_pt2_from_the_suffix(tmp_path, capsys):
    assert main(["export", "starnet_s050", "--img-size", "32", "-o", str(tmp_path / "m.pt2")]) in (0, None)
    assert "AOTInductor package vs PyTorch max abs diff" in capsys.readouterr().out
    assert (tmp_path / "m.pt2").stat().st_size > 0
