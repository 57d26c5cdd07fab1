"""A run's pickled checkpoint is opened only when this user made it.

``checkpoint/model.zip`` and ``replay_buffer.pkl`` are pickles: loading them runs code. A
resume (``bench train --resume``) and the tools that read a run's critic or actor
(``benchmarks/residual_diagnosis.py`` and its siblings) open a checkpoint only when every file
in it is a plain file of this user with a checkpoint's name; a run folder received from
elsewhere, or one with a planted link or extra file, is refused before anything is unpickled.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from residual_bench.run_directory import own_checkpoint_model, training_run_argument

ROOT = Path(__file__).resolve().parent.parent


def run_folder(tmp_path: Path) -> Path:
    """A run folder as ``bench train`` leaves it, with stand-ins for its files."""
    checkpoint = tmp_path / "run" / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.zip").write_bytes(b"stand-in")
    (checkpoint / "state.json").write_text("{}")
    return checkpoint.parent


def test_this_users_own_checkpoint_is_opened(tmp_path):
    run = run_folder(tmp_path)
    assert own_checkpoint_model(run) == run / "checkpoint" / "model.zip"
    assert training_run_argument(str(run)) == run


def test_a_folder_without_a_checkpoint_is_not_a_training_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a training run"):
        own_checkpoint_model(tmp_path)
    with pytest.raises(argparse.ArgumentTypeError, match="not a training run"):
        training_run_argument(str(tmp_path))


def test_a_model_that_is_a_link_is_refused(tmp_path):
    run = run_folder(tmp_path)
    elsewhere = tmp_path / "elsewhere.zip"
    elsewhere.write_bytes(b"code")
    (run / "checkpoint" / "model.zip").unlink()
    (run / "checkpoint" / "model.zip").symlink_to(elsewhere)
    with pytest.raises(PermissionError, match="not a plain file of this user"):
        own_checkpoint_model(run)


def test_a_file_that_no_checkpoint_has_is_refused(tmp_path):
    run = run_folder(tmp_path)
    (run / "checkpoint" / "payload.pkl").write_bytes(b"code")
    with pytest.raises(PermissionError, match="not a file of a training checkpoint"):
        own_checkpoint_model(run)


def test_a_run_reading_benchmark_refuses_such_a_folder_before_it_starts(tmp_path):
    run = run_folder(tmp_path)
    (run / "checkpoint" / "payload.pkl").write_bytes(b"code")
    script = ROOT / "benchmarks" / "residual_diagnosis.py"
    done = subprocess.run(
        [sys.executable, str(script), str(run), "--out", str(tmp_path / "out.md")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "not a file of a training checkpoint" in done.stderr
    assert not (tmp_path / "out.md").exists()
