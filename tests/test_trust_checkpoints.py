"""A residual checkpoint from elsewhere never runs code here.

The attack: stable-baselines3's ``model.zip`` stores fields of its ``data`` JSON marked
``:serialized:`` as cloudpickle strings, and SB3's ``load`` unpickles every one of them, so a
``model.zip`` can run anything on the machine that loads it. Each test below plants such a
payload - it creates a marker file when unpickled - and checks that the marker stays absent
while the command refuses the file with one line that says how to convert it.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import io
import json
import pickle
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from residual_bench.cli import main
from residual_bench.residual import make_residual_env
from residual_bench.residual.agents import ResidualSAC, build_agent, load_agent
from residual_bench.residual.checkpoint import (
    PICKLED_MODEL_FILE,
    RESIDUAL_FILES,
    PickledResidualError,
    convert_residual,
    load_residual,
    residual_location,
)
from residual_bench.residual.config import load_config
from residual_bench.residual.weights import read_sb3_policy_state


class MarkerPayload:
    """Unpickling this creates ``path``: proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def run_main(argv: list[str]) -> SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return SimpleNamespace(rc=rc, out=out.getvalue(), err=err.getvalue())


def plant_payload(zip_path: Path, marker: Path) -> None:
    """Add a ``:serialized:`` field carrying :class:`MarkerPayload` to an SB3 zip's data."""
    with zipfile.ZipFile(zip_path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    data["innocent_looking_field"] = {
        ":type:": "<class 'dict'>",
        ":serialized:": base64.b64encode(pickle.dumps(MarkerPayload(marker))).decode(),
    }
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def build_sb3_zip(root: Path) -> tuple[Path, dict]:
    """An SB3 ``model.zip`` of a SAC residual for the scripted base in ``root``, and its
    residual.json in the earlier (version 2) format."""
    env = make_residual_env("scripted", "objects")
    try:
        model = build_agent(load_config("sac"), env, seed=0)
        with torch.no_grad():  # not the zero residual, so that equal actions mean something
            for param in model.actor.parameters():
                param.normal_(0.0, 0.3)
        model.save(root / "model.zip")
    finally:
        env.close()
    shipped = json.loads(
        (residual_location("shipped:scripted-sac-seed0") / "residual.json").read_text()
    )
    meta = {k: v for k, v in shipped.items() if k != "policy"} | {"version": 2}
    return root / "model.zip", meta


@pytest.fixture(scope="module")
def sb3_zip(tmp_path_factory) -> tuple[Path, dict]:
    return build_sb3_zip(tmp_path_factory.mktemp("legacy"))


def write_legacy_residual(path: Path, sb3_zip: tuple[Path, dict], marker: Path) -> Path:
    """A residual directory of the earlier format whose model.zip carries a payload that
    creates ``marker``."""
    zip_path, meta = sb3_zip
    path.mkdir()
    (path / "residual.json").write_text(json.dumps(meta))
    (path / PICKLED_MODEL_FILE).write_bytes(zip_path.read_bytes())
    plant_payload(path / PICKLED_MODEL_FILE, marker)
    return path


@pytest.fixture
def legacy_residual(sb3_zip, tmp_path) -> Path:
    return write_legacy_residual(tmp_path / "residual", sb3_zip, tmp_path / "pwned")


def test_the_planted_payload_really_runs_when_sb3_loads_the_zip(legacy_residual, tmp_path):
    """The attack is real: what every test below refuses would otherwise run."""
    ResidualSAC.load(legacy_residual / PICKLED_MODEL_FILE, device="cpu")
    assert (tmp_path / "pwned").exists()


def test_loading_a_pickled_residual_is_refused_and_the_payload_never_runs(
    legacy_residual, tmp_path
):
    with pytest.raises(PickledResidualError, match="bench residual convert"):
        load_residual(legacy_residual)
    assert not (tmp_path / "pwned").exists()


def test_bench_eval_refuses_a_pickled_residual_in_one_line(legacy_residual, tmp_path):
    result = run_main(
        [
            "eval",
            "--base",
            "scripted",
            "--suite",
            "nominal",
            "--episodes",
            "1",
            "--residual",
            str(legacy_residual),
            "--out",
            str(tmp_path / "eval"),
            "--executor",
            "serial",
            "--quiet",
        ]
    )
    assert result.rc == 2
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert f"bench residual convert {legacy_residual}" in result.err
    assert not (tmp_path / "pwned").exists()


def test_a_model_zip_beside_safetensors_weights_is_never_opened(legacy_residual, tmp_path):
    payload = (legacy_residual / PICKLED_MODEL_FILE).read_bytes()
    convert_residual(legacy_residual)
    (legacy_residual / PICKLED_MODEL_FILE).write_bytes(payload)
    load_residual(legacy_residual).act(np.zeros(42, dtype=np.float32))
    assert not (tmp_path / "pwned").exists()


def test_conversion_never_unpickles_and_keeps_the_actions_exactly(
    sb3_zip, legacy_residual, tmp_path
):
    zip_path, meta = sb3_zip
    original = load_agent("sac", str(zip_path))
    result = run_main(["residual", "convert", str(legacy_residual)])
    assert result.rc == 0, result.err
    assert not (tmp_path / "pwned").exists()
    assert sorted(p.name for p in legacy_residual.iterdir()) == sorted(RESIDUAL_FILES)
    converted = load_residual(legacy_residual)
    observations = np.random.default_rng(0).normal(size=(50, 42)).astype(np.float32)
    for obs in observations:
        expected, _ = original.predict(obs, deterministic=True)
        np.testing.assert_array_equal(converted.act(obs), expected)


def test_a_policy_pth_that_is_not_weights_only_is_refused(sb3_zip, tmp_path):
    zip_path, _ = sb3_zip
    evil = tmp_path / "model.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(evil, "w") as dst:
        for name in src.namelist():
            content = src.read(name)
            if name == "policy.pth":
                buffer = io.BytesIO()
                torch.save({"weight": MarkerPayload(tmp_path / "pwned")}, buffer)
                content = buffer.getvalue()
            dst.writestr(name, content)
    with pytest.raises(ValueError, match="not a weights-only state dict"):
        read_sb3_policy_state(evil)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"policy_kwargs": {"activation_fn": "os.system"}}, "unsupported key"),
        ({"policy_kwargs": {"net_arch": [10**9]}}, "net_arch"),
        (
            {
                "observation_space": {
                    "type": "Box",
                    "shape": [10**5, 10**5],
                    "dtype": "float32",
                    "low": [],
                    "high": [],
                }
            },
            "more than",
        ),
        ({"algo": "dqn"}, "algo"),
    ],
)
def test_a_network_description_that_would_need_code_or_unbounded_memory_is_refused(
    tmp_path, change, message
):
    path = tmp_path / "residual"
    path.mkdir()
    shipped = residual_location("shipped:scripted-sac-seed0")
    for name in RESIDUAL_FILES:
        (path / name).write_bytes((shipped / name).read_bytes())
    meta = json.loads((path / "residual.json").read_text())
    meta["policy"].update(change)
    (path / "residual.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        load_residual(path)
