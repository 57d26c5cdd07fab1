"""The learning curve file survives a run killed in the middle of writing a row."""

import time

import pytest

from residual_bench.training.learning_curve import (
    PROGRESS_FIELDS,
    append_progress,
    last_evaluated,
    read_progress,
    training_clock,
)

HEADER = ",".join(PROGRESS_FIELDS)


def cut_short(tmp_path):
    """Two whole rows, then a third an interrupt cut off after a few bytes."""
    path = tmp_path / "progress.csv"
    path.write_text(f"{HEADER}\n10000,0.5,0.3,0.7,100.0\n20000,0.6,0.4,0.8,200.0\n30000,0.")
    return path


def test_a_missing_curve_has_no_rows(tmp_path):
    assert len(read_progress(tmp_path / "progress.csv")) == 0
    assert last_evaluated(tmp_path / "progress.csv") == 0


def test_a_curve_killed_before_its_first_row_has_no_rows(tmp_path):
    path = tmp_path / "progress.csv"
    for text in (f"{HEADER}\n", HEADER[:12]):
        path.write_text(text)
        assert len(read_progress(path)) == 0
        assert last_evaluated(path) == 0


def test_readers_keep_whole_rows_only(tmp_path):
    path = cut_short(tmp_path)
    assert read_progress(path)["timesteps"].tolist() == [10000, 20000]
    assert last_evaluated(path) == 20000
    assert time.perf_counter() - training_clock(path) == pytest.approx(200.0, abs=1.0)


def test_a_cut_short_row_is_dropped_from_a_file_written_by_csv_writer(tmp_path):
    path = tmp_path / "progress.csv"
    path.write_bytes(f"{HEADER}\r\n10000,0.5,0.3,0.7,100.0\r\n20000,0.6,0.4,0.8,2".encode())
    assert read_progress(path)["timesteps"].tolist() == [10000]


def test_the_next_append_drops_the_cut_short_row_with_a_warning(tmp_path):
    path = cut_short(tmp_path)
    with pytest.warns(UserWarning, match="truncated final line"):
        append_progress(path, 30000, 0.5, 20, time.perf_counter() - 300.0)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER
    assert [line.split(",")[0] for line in lines[1:]] == ["10000", "20000", "30000"]
    assert read_progress(path)["wall_s"].iloc[-1] == pytest.approx(300.0, abs=1.0)


def test_a_final_row_that_lost_only_its_newline_is_kept_by_readers_and_the_next_append(
    tmp_path, recwarn
):
    # csv.writer ends a row with "\r\n": a row that reached its "\r" is whole.
    path = tmp_path / "progress.csv"
    path.write_bytes(f"{HEADER}\r\n10000,0.5,0.3,0.7,100.0\r\n20000,0.6,0.4,0.8,200.0\r".encode())
    assert read_progress(path)["timesteps"].tolist() == [10000, 20000]
    assert last_evaluated(path) == 20000
    append_progress(path, 30000, 0.5, 20, time.perf_counter() - 300.0)
    assert read_progress(path)["timesteps"].tolist() == [10000, 20000, 30000]
    assert path.read_bytes().count(b"\r\n") == 4, "one line end per row, none doubled"
    assert not [w for w in recwarn if "truncated" in str(w.message)]


def test_appending_to_a_new_file_writes_the_header_once(tmp_path):
    path = tmp_path / "progress.csv"
    append_progress(path, 100, 0.25, 4, time.perf_counter())
    append_progress(path, 200, 0.5, 4, time.perf_counter())
    frame = read_progress(path)
    assert list(frame.columns) == list(PROGRESS_FIELDS)
    assert frame["timesteps"].tolist() == [100, 200]
    assert (frame["success_ci_low"] <= frame["success_rate"]).all()


def test_a_file_that_is_not_a_learning_curve_is_named(tmp_path):
    path = tmp_path / "progress.csv"
    path.write_text("step,reward\n1,2\n")
    with pytest.raises(ValueError, match=r"progress\.csv: not a learning curve.*timesteps"):
        read_progress(path)


def test_a_value_that_is_not_a_number_is_named(tmp_path):
    path = tmp_path / "progress.csv"
    path.write_text(f"{HEADER}\n10000,half,0.3,0.7,100.0\n")
    with pytest.raises(ValueError, match="'success_rate' holds a value that is not a number"):
        read_progress(path)
