"""`metrics_across_processes`: the directory where the processes of one server keep their metrics (the sums over
them are tested on a real `sandu serve --workers 2` in test_api_load.py)."""

from __future__ import annotations

import os

from sandu.observability import MULTIPROCESS_DIR_ENV, files_backed, metrics_across_processes


def test_a_directory_of_its_own_is_made_named_and_removed(monkeypatch):
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    with metrics_across_processes() as path:
        assert path.is_dir() and list(path.iterdir()) == []
        assert os.environ[MULTIPROCESS_DIR_ENV] == str(path)  # the processes started now find it
    assert not path.exists()
    assert MULTIPROCESS_DIR_ENV not in os.environ


def test_the_operators_directory_is_made_emptied_of_metrics_and_kept(monkeypatch, tmp_path):
    given = tmp_path / "metrics" / "sandu"
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(given))
    with metrics_across_processes() as path:
        assert path == given and path.is_dir()
    given.joinpath("counter_4242.db").write_bytes(b"an earlier run's counts")
    given.joinpath("notes.txt").write_text("not prometheus-client's")
    with metrics_across_processes() as path:
        assert sorted(p.name for p in path.iterdir()) == ["notes.txt"]  # the earlier run's file would add to this run's sums
    assert given.joinpath("notes.txt").exists()
    assert os.environ[MULTIPROCESS_DIR_ENV] == str(given)


def test_this_test_process_keeps_its_metrics_in_memory():
    """The suite's apps each count in their own registry: prometheus-client was imported without the directory."""
    assert not files_backed()
