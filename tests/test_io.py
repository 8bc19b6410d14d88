"""starquad.io: atomic writes and the cache folder."""

from pathlib import Path

import pytest

from starquad.io import atomic_write, cache_dir


def test_cache_dir_follows_starquad_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("STARQUAD_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir("latency") == Path.home() / ".cache" / "starquad" / "latency"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("ext", "x") == tmp_path / "xdg" / "starquad" / "ext" / "x"
    monkeypatch.setenv("STARQUAD_CACHE", str(tmp_path / "mine"))
    assert cache_dir("latency") == tmp_path / "mine" / "latency"


def test_the_extension_and_the_latency_tables_share_the_cache_folder(monkeypatch, tmp_path):
    from starquad.nas.latency import Protocol, default_table_path
    from starquad.ops.dwconv import build_directory

    monkeypatch.setenv("STARQUAD_CACHE", str(tmp_path))
    assert build_directory().parent == tmp_path / "ext"
    assert default_table_path("quadranet", Protocol()).parent == tmp_path / "latency"


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "result.json"
    atomic_write(target, "old")
    atomic_write(target, b"new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]
    with pytest.raises(TypeError):
        atomic_write(target, 3)  # not bytes or text: refused, the old file kept
    assert target.read_text() == "new"
