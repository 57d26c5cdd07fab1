"""A non-editable install must carry the specs that live at the top of the repository.

``envs/`` (scene spec and perturbation suites) sits beside the package, not inside it; a
user who ran ``pip install .`` and works outside the checkout still needs every file.
"""

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("setup.cfg", "pyproject.toml", "README.md", "residual_bench", "envs", "baselines")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in SHIPPED:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(
                path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(path, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_contains_every_scene_spec_and_suite(wheel):
    names = set(wheel.namelist())
    expected = [f"residual_bench/specs/envs/{p.name}" for p in (REPO / "envs").glob("*.yaml")]
    expected += [
        f"residual_bench/specs/envs/suites/{p.name}" for p in (REPO / "envs/suites").glob("*.yaml")
    ]
    assert expected and all(name in names for name in expected), sorted(set(expected) - names)


def test_the_wheel_contains_the_data_files_and_the_bench_command(wheel):
    names = wheel.namelist()
    assert "residual_bench/data/object_catalog.json" in names
    assert "residual_bench/data/bc_base.pt" in names  # the shipped bc checkpoint
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bench = residual_bench.cli:main" in wheel.read(entry_points).decode()


def test_the_packaged_specs_are_the_repository_files(wheel):
    for path in (REPO / "envs").rglob("*.yaml"):
        packaged = wheel.read(f"residual_bench/specs/envs/{path.relative_to(REPO / 'envs')}")
        assert packaged == path.read_bytes()


def test_recording_videos_has_an_extra_that_installs_what_it_needs():
    """gymnasium's RecordVideo writes files through moviepy, which nothing else installs."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    video = config["options.extras_require"]["video"].split()
    assert any(requirement.startswith("moviepy") for requirement in video)
