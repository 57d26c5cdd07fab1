"""Trained residuals on disk, and the agent that runs one at evaluation.

A trained residual is a directory of data, nothing that is unpickled::

    residual.json       format, version, algo, base (name and spec), task (``env_id``),
                        features, alpha, the full config, training seed / steps / suite,
                        package versions, and ``policy``: the network's description
                        (see ``weights``)
    policy.safetensors  the policy's weights

:func:`load_residual` checks the metadata before touching the weights and rebuilds the
network from its description, so a wrong, damaged or hostile directory gives one clear error
and never runs code. A directory in the earlier, pickle-bearing format (stable-baselines3's
``model.zip``) is refused with the command that converts it: :func:`convert_residual`,
which reads only the zip's weights.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from residual_bench.registration import ENV_ID, same_task
from residual_bench.residual.agents import GLOBAL_CNN_FEATURES
from residual_bench.residual.algorithms import ALGORITHMS
from residual_bench.residual.config import load_config
from residual_bench.residual.critic_values import gate_action
from residual_bench.residual.env import ResidualEnv, check_base_plan_steps, observation_layout
from residual_bench.residual.factory import make_residual_env, residual_env_kwargs
from residual_bench.residual.features import FEATURE_MODES
from residual_bench.residual.weights import (
    build_policy,
    channel_first_space,
    describe_network,
    describe_policy,
    load_state,
    load_weights,
    read_sb3_policy_state,
    save_weights,
)
from residual_bench.run_directory import write_directory_atomically
from residual_bench.spaces import MAX_ALPHA
from residual_bench.tasks import task_entry

FORMAT = "residual-bench-residual"
SHIPPED_DIR = "data/residuals"
VERSION = 3  # 2: features in units of 5 cm and 0.5 m/s; 3: weights as safetensors, no pickle
REQUIRED = ("format", "version", "algo", "name", "base", "features", "alpha", "train_seed")
METADATA_FILE = "residual.json"
WEIGHTS_FILE = "policy.safetensors"
RESIDUAL_FILES = (METADATA_FILE, WEIGHTS_FILE)
"""Every file of a trained residual: data only, nothing that is unpickled."""
PICKLED_MODEL_FILE = "model.zip"
"""stable-baselines3's own format, written by earlier releases: it carries pickles."""
MAX_METADATA_BYTES = 1024 * 1024


def save_residual(model: Any, out: str | Path, metadata: dict[str, Any]) -> Path:
    """Write ``model``'s policy and ``metadata`` to directory ``out`` atomically (all or
    nothing): the weights as safetensors, the network's description in ``residual.json``."""
    policy = describe_policy(metadata["algo"], model)

    def write(directory: Path) -> None:
        save_weights(model.policy, directory / WEIGHTS_FILE)
        meta = {"format": FORMAT, "version": VERSION, **metadata, "policy": policy}
        (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    return write_directory_atomically(out, write)


SHIPPED_PREFIX = "shipped:"
"""``shipped:NAME`` names a residual shipped with the package (see :func:`shipped_name`)."""


def residual_location(ref: str | Path) -> Path:
    """The directory a residual reference names: a path, or ``shipped:NAME`` for a residual
    shipped with the package (records name those the same way on every machine)."""
    text = str(ref)
    if text.startswith(SHIPPED_PREFIX):
        name = text[len(SHIPPED_PREFIX) :]
        root = Path(str(resources.files("residual_bench").joinpath(SHIPPED_DIR)))
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{text!r}: expected {SHIPPED_PREFIX}[<scene>-]<base>-<algo>-seed<S>")
        return root / name
    return Path(ref)


def shipped_name(base: str, algo: str, seed: int, env_id: str = ENV_ID) -> str:
    """The name the residual for this base, algorithm, seed and task is shipped under:
    ``<base>-<algo>-seed<S>`` on pick-and-place, the names its records have always used, and
    ``<scene>-<base>-<algo>-seed<S>`` on any other task (``stack-scripted-sac-seed0``)."""
    name = f"{base}-{algo}-seed{seed}"
    return name if same_task(env_id, ENV_ID) else f"{task_entry(env_id).task.scene}-{name}"


def shipped_residual(base: str, algo: str, seed: int, env_id: str = ENV_ID) -> str | None:
    """The reference of the residual shipped for this base, algorithm, seed and task, if any."""
    ref = SHIPPED_PREFIX + shipped_name(base, algo, seed, env_id)
    if not (residual_location(ref) / METADATA_FILE).is_file():
        return None
    return ref if same_task(trained_env_id(read_metadata(ref)), env_id) else None


def trained_env_id(meta: dict[str, Any]) -> str:
    """The task id a residual was trained on, from its ``residual.json``. Residuals written
    before the id was recorded were all trained on pick-and-place: they read as its id."""
    return str(meta.get("env_id", ENV_ID))


def check_residual_task(path: str | Path, meta: dict[str, Any], env_id: str) -> None:
    """Refuse to run a residual on another task than the one it was trained on: its
    corrections were learnt for that task's scenes and phases, so on another they are
    meaningless (even when the features happen to have the same size).

    Raises:
        ValueError: ``env_id`` is not (a version of) the residual's training task.
    """
    trained = trained_env_id(meta)
    if not same_task(trained, env_id):
        raise ValueError(
            f"residual {path} was trained on {trained}, not {env_id}; evaluate it with "
            f"--env {trained}, or train one for {env_id} (bench train --env {env_id})"
        )


class PickledResidualError(ValueError):
    """A residual in stable-baselines3's pickle-bearing format, which is never loaded."""


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checked ``residual.json`` of a trained residual (a directory or ``shipped:NAME``).

    Raises:
        FileNotFoundError: no such directory.
        PickledResidualError: a residual in the earlier ``model.zip`` format.
        ValueError: not a trained residual, an unknown version, or missing fields.
    """
    path = residual_location(path)
    if not path.exists():
        raise FileNotFoundError(f"residual {str(path)!r} does not exist")
    pickled = (path / PICKLED_MODEL_FILE).exists() and not (path / WEIGHTS_FILE).exists()
    if path.is_dir() and pickled:
        raise PickledResidualError(
            f"{path}: a residual in stable-baselines3's model.zip format, which carries pickles "
            f"and is never loaded; convert it with `bench residual convert {path}` (reads only "
            "its weights)"
        )
    meta = _read_json(path / METADATA_FILE, path)
    if meta.get("version") != VERSION:
        raise ValueError(
            f"{path / METADATA_FILE}: version {str(meta.get('version'))[:20]!r}, expected "
            f"{VERSION} (a residual of another version saw other features: train it again "
            "with this release)"
        )
    _check_fields(meta, path / METADATA_FILE, (*REQUIRED, "policy"))
    if not _is_regular_file(path / WEIGHTS_FILE):
        raise ValueError(f"{path}: no {WEIGHTS_FILE} (the residual's weights)")
    return meta


def run_agent_settings(run: str | Path, config: str | Path | None = None) -> dict[str, Any]:
    """``algo``, ``features``, ``alpha``, ``base`` (None where the config names none) and
    ``residual_options`` (the :class:`ResidualEnv` arguments it acts with, as
    :meth:`ResidualAgent.residual_options`) of a ``bench train`` run folder: its
    ``residual/residual.json`` once finished, else the ``config`` it was started with (a run
    stopped early has only its checkpoint).

    Raises:
        ValueError: an unfinished run without its config.
    """
    run = Path(run)
    if (run / "residual").is_dir():
        meta = read_metadata(run / "residual")
        settings = {key: meta[key] for key in ("algo", "features", "alpha", "base")}
        options = {key: meta.get(key, 0) for key in ("gripper_deadband", "base_plan_steps")}
        return {**settings, "residual_options": options}
    if config is None:
        raise ValueError(f"{run}: unfinished (no residual/); give the config it was started with")
    parsed = load_config(config)
    return {
        "algo": parsed.algo,
        "features": parsed.features,
        "alpha": parsed.alpha,
        "base": parsed.base,
        "residual_options": {
            "gripper_deadband": parsed.gripper_deadband,
            "base_plan_steps": parsed.base_plan_steps,
        },
    }


def _is_regular_file(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()


def _read_json(meta_path: Path, path: Path) -> dict[str, Any]:
    if not path.is_dir() or not _is_regular_file(meta_path):
        raise ValueError(
            f"{path}: not a trained residual (expected a directory with {METADATA_FILE} and "
            f"{WEIGHTS_FILE}, as written by `bench train`)"
        )
    if meta_path.stat().st_size > MAX_METADATA_BYTES:
        raise ValueError(f"{meta_path}: larger than {MAX_METADATA_BYTES} bytes")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a residual-bench residual (format {FORMAT!r})")
    return meta


def _check_fields(meta: dict[str, Any], meta_path: Path, required: tuple[str, ...]) -> None:
    missing = [k for k in required if k not in meta]
    if missing:
        raise ValueError(f"{meta_path}: missing field(s) {missing}")
    if meta["algo"] not in ALGORITHMS:
        raise ValueError(f"{meta_path}: unknown algo {str(meta['algo'])[:40]!r}")
    if meta["features"] not in FEATURE_MODES:
        raise ValueError(f"{meta_path}: unknown features {str(meta['features'])[:40]!r}")
    alpha = meta["alpha"]
    if not isinstance(alpha, list) or not all(
        isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a <= MAX_ALPHA
        for a in alpha
    ):
        raise ValueError(f"{meta_path}: alpha must be a list of numbers in [0, {MAX_ALPHA:g}]")
    band = meta.get("gripper_deadband", 0.0)
    if not (isinstance(band, (int, float)) and not isinstance(band, bool) and 0 <= band < 1):
        raise ValueError(f"{meta_path}: gripper_deadband must be a number in [0, 1)")
    try:
        check_base_plan_steps(meta.get("base_plan_steps", 0))
    except ValueError as err:
        raise ValueError(f"{meta_path}: {err}") from None
    config = meta.get("config")
    gated = config.get("gated") if isinstance(config, dict) else None
    if gated is not None:
        temperature = gated.get("temperature") if isinstance(gated, dict) else None
        if not isinstance(temperature, (int, float)) or not 0 < temperature < float("inf"):
            raise ValueError(f"{meta_path}: config.gated.temperature must be a positive number")


class ResidualAgent:
    """A trained residual, ready to run: deterministic actions from its residual env's obs."""

    def __init__(self, path: str | Path) -> None:
        self.path = residual_location(path)
        self.metadata = read_metadata(self.path)
        self.name: str = self.metadata["name"]
        self.base: str = self.metadata["base"]
        self.features: str = self.metadata["features"]
        self.alpha: list[float] = list(self.metadata["alpha"])
        self.gripper_deadband: float = float(self.metadata.get("gripper_deadband", 0.0))
        self.base_plan_steps: int = int(self.metadata.get("base_plan_steps", 0))
        self.train_seed: int = int(self.metadata["train_seed"])
        self.policy = build_policy(self.metadata["policy"], f"{self.path / METADATA_FILE}: policy")
        _check_observation_size(self.policy, self.features, self.base_plan_steps, self.path)
        load_weights(self.policy, self.path / WEIGHTS_FILE)
        gated = self.metadata.get("config", {}).get("gated")
        self.gate_temperature = None if gated is None else float(gated["temperature"])

    def env_kwargs(self) -> dict[str, Any]:
        """The env arguments this residual's features need (see ``residual_env_kwargs``)."""
        return residual_env_kwargs(self.base, self.features)

    def residual_options(self) -> dict[str, Any]:
        """The :class:`ResidualEnv` arguments it was trained with besides features and alpha
        (``make_residual_env``'s ``residual_options``): it acts as it learnt to."""
        return {"gripper_deadband": self.gripper_deadband, "base_plan_steps": self.base_plan_steps}

    def wrap(self, env: Any, controller: Any) -> Any:
        """The residual env this agent acts in, around ``env`` and a base ``controller``."""
        return ResidualEnv(
            env,
            controller,
            features=self.features,
            alpha=tuple(self.alpha),
            **self.residual_options(),
        )

    def reset(self) -> None:
        """Nothing to reset: the policy is memoryless."""

    def act(self, obs: Any) -> np.ndarray:
        """The deterministic residual action r in [-1, 1]^7 (scaled by the critics' gate for
        a gated residual, as in training)."""
        action, _ = self.policy.predict(obs, deterministic=True)
        if self.gate_temperature is not None:
            action = gate_action(self.policy, obs, action, self.gate_temperature)
        return np.asarray(action, dtype=np.float64)


def _check_observation_size(policy: Any, features: str, plan_steps: int, path: Path) -> None:
    """Refuse a network that does not read the observation vector its metadata describes
    (features and ``base_plan_steps``): it would fail at its first action, or, worse, read
    one part as another."""
    space = policy.observation_space
    vector = space["vector"] if isinstance(space, gym.spaces.Dict) else space
    layout = observation_layout(features, plan_steps)
    expected = max(part.stop for part in layout.values())
    if vector.shape != (expected,):
        raise ValueError(
            f"{path / METADATA_FILE}: the network reads an observation vector of shape "
            f"{vector.shape}, but features {features!r} with base_plan_steps {plan_steps} "
            f"give {expected} numbers"
        )


def load_residual(path: str | Path) -> ResidualAgent:
    """Load a trained residual directory (see the module docstring)."""
    return ResidualAgent(path)


def convert_residual(path: str | Path) -> Path:
    """Rewrite a residual directory of the earlier ``model.zip`` format in this one, in place
    and atomically, without unpickling anything; returns the directory.

    The weights come from the zip's ``policy.pth`` (read weights-only); the network's
    description from ``residual.json`` (algo, features, config) and the observation space of
    the residual env it was trained in. ``model.zip`` is removed: it is what made the
    directory unsafe to share. Converting keeps the network exactly: the same actions.

    Raises:
        FileNotFoundError: no such directory.
        ValueError: not a residual of the earlier format, or weights that do not fit.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"residual {str(path)!r} does not exist")
    if not _is_regular_file(path / PICKLED_MODEL_FILE):
        raise ValueError(f"{path}: no {PICKLED_MODEL_FILE} to convert")
    meta = _read_json(path / METADATA_FILE, path)
    _check_fields(meta, path / METADATA_FILE, REQUIRED)
    config = meta.get("config") or {}
    hyperparams = config.get("hyperparams") or {}
    kwargs = dict(hyperparams.get("policy_kwargs") or {})
    algo = meta["algo"]
    if ALGORITHMS[algo].policy_takes_use_sde:
        kwargs["use_sde"] = bool(hyperparams.get("use_sde", False))
    gated = config.get("gated")
    if gated is not None:
        kwargs["n_critics"] = int(gated["n_critics"])
    plan = {"base_plan_steps": meta.get("base_plan_steps", 0)}
    env = make_residual_env(meta["base"], meta["features"], tuple(meta["alpha"]), plan)
    try:
        observation_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    if isinstance(observation_space, gym.spaces.Dict):
        kwargs.setdefault("features_extractor_kwargs", {}).setdefault(
            "cnn_output_dim", GLOBAL_CNN_FEATURES
        )
        observation_space = channel_first_space(observation_space)
    description = describe_network(algo, observation_space, action_space, kwargs)
    policy = build_policy(description)
    zip_path = path / PICKLED_MODEL_FILE
    load_state(policy, read_sb3_policy_state(zip_path), str(zip_path))
    meta = {**meta, "version": VERSION, "policy": description}

    def write(directory: Path) -> None:
        save_weights(policy, directory / WEIGHTS_FILE)
        (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    return write_directory_atomically(path, write)
