"""How a committed result names the files its command read."""

from pathlib import Path

from residual_bench.provenance import REPOSITORY, shown_path


def test_a_file_in_the_repository_is_shown_by_its_path_there(monkeypatch):
    monkeypatch.chdir(REPOSITORY / "results")
    shown = shown_path(Path("residual") / "recipe-pilots" / "p32" / "config.yaml")
    assert shown == "results/residual/recipe-pilots/p32/config.yaml"


def test_a_file_elsewhere_is_shown_by_its_name_alone(tmp_path):
    assert shown_path(tmp_path / "runs" / "p32.yaml") == "p32.yaml"
