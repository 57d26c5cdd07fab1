"""Residual agent configurations: the YAML files under ``baselines/``.

A config names the algorithm, the features, alpha, the SB3 hyperparameters, the safeguards
and the training protocol; ``bench train --residual sac`` reads ``baselines/sac.yaml`` (or any
YAML path). Unknown or mistyped fields are errors that name the file and the field.

An optional ``base`` ties a config to one base: ``scratch`` is SAC on the ``zero`` base (no
base at all, alpha 1), and ``bench train`` refuses it with any other.

Safeguards (from the residual-RL literature; each 0 / false switches it off):

- ``zero_init``: the actor's output layer starts at zero, so an untrained residual
  reproduces the base exactly;
- ``warmup_steps``: the first transitions are the base alone (r = 0), not random actions;
- ``critic_only_steps``: the actor stays frozen while the critic learns the base's values;
- ``output_decay``: per update, the actor's output layer shrinks by this fraction, so a
  correction the critic does not keep asking for fades back to the base;
- ``actor_penalty``: weight of ``mean|Q| * mean(r^2)`` in the actor's loss (TD3+BC-style,
  relative to the critic's scale): the residual leaves zero only where the critic keeps
  asking for it;
- ``exploration_ramp_steps`` H: the residual acts with probability min(t / H, 1), else 0;
- ``scale_ramp_steps``: alpha grows linearly from 0 to its value over this many steps;
- ``magnitude_penalty`` / ``rate_penalty``: reward penalties on |r|^2 and action changes;
- ``feature_noise``: pose noise and detection dropout on the ``objects`` features.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from residual_bench.env_spec import SpecError, is_number, read_yaml, spec_dir
from residual_bench.residual.features import FEATURE_MODES

ALGOS = ("sac", "td3", "ppo")
SAFEGUARD_DEFAULTS: dict[str, Any] = {
    "zero_init": True,
    "warmup_steps": 0,
    "critic_only_steps": 0,
    "output_decay": 0.0,
    "actor_penalty": 0.0,
    "exploration_ramp_steps": 0,
    "scale_ramp_steps": 0,
    "magnitude_penalty": 0.0,
    "rate_penalty": 0.0,
    "feature_noise": None,
}
NOISE_DEFAULTS: dict[str, Any] = {"position_std_m": 0.005, "dropout": 0.05}
GATED_DEFAULTS: dict[str, Any] = {"n_critics": 5, "temperature": 1.0}
TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 300_000,
    "suite": "mixed",
    "eval_every": 10_000,
    "eval_episodes": 20,
    "checkpoint_every": 10_000,
}


@dataclass
class ResidualConfig:
    """A parsed residual agent configuration (see the module docstring)."""

    name: str
    algo: str
    description: str = ""
    features: str = "objects"
    alpha: list[float] = field(default_factory=lambda: [0.1])
    hyperparams: dict[str, Any] = field(default_factory=dict)
    safeguards: dict[str, Any] = field(default_factory=lambda: dict(SAFEGUARD_DEFAULTS))
    train: dict[str, Any] = field(default_factory=lambda: dict(TRAIN_DEFAULTS))
    gated: dict[str, Any] | None = None
    base: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, stored with every trained residual."""
        return copy.deepcopy(self.__dict__)


def config_names() -> list[str]:
    """Names of the shipped residual configs (``baselines/*.yaml`` with an ``algo``; the
    fine-tuning baselines have a ``method`` instead)."""
    paths = spec_dir("baselines").glob("*.yaml")
    return sorted(p.stem for p in paths if "algo" in read_yaml(p))


def merge_section(section: str, given: Any, defaults: dict[str, Any], where: str) -> dict[str, Any]:
    """``defaults`` updated by the mapping ``given`` (None: nothing given) of a YAML file.

    Raises:
        SpecError: ``given`` is not a mapping or has a field ``defaults`` does not know; the
            message names the file and the field.
    """
    if given is None:
        return dict(defaults)
    if not isinstance(given, dict):
        raise SpecError(f"{where}: {section} must be a mapping, got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise SpecError(
            f"{where}: unknown field(s) {', '.join(f'{section}.{k}' for k in unknown)}; "
            f"valid: {', '.join(defaults)}"
        )
    return {**defaults, **given}


def _merge(section: str, given: Any, defaults: dict[str, Any], where: str) -> dict[str, Any]:
    merged = merge_section(section, given, defaults, where)
    for key, value in merged.items():
        default = defaults[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif is_number(default):
            ok = is_number(value) and value >= 0
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = value is None or isinstance(value, dict)
        if not ok:
            raise SpecError(f"{where}: {section}.{key} has an invalid value {value!r}")
    return merged


def load_config(name_or_path: str | Path) -> ResidualConfig:
    """A residual config by shipped name (``sac``, ``td3``, ...) or YAML path.

    Raises:
        ValueError: an unknown name (listing the shipped ones), a malformed file, or an
            invalid field (the message names the file and the field).
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = spec_dir("baselines") / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ValueError(
                f"unknown residual {str(name_or_path)!r}; valid choices: "
                f"{', '.join(config_names())} (or a path to a .yaml config)"
            )
    data = read_yaml(path)
    where = str(path)
    known = {"algo", "description", "features", "alpha", "hyperparams", "safeguards", "train"}
    known.update({"gated", "base"})
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; valid: {sorted(known)}")
    algo = data.get("algo")
    if algo not in ALGOS:
        raise SpecError(f"{where}: algo must be one of {', '.join(ALGOS)}, got {algo!r}")
    features = data.get("features", "objects")
    if features not in FEATURE_MODES:
        raise SpecError(
            f"{where}: features must be one of {', '.join(FEATURE_MODES)}, got {features!r}"
        )
    alpha = data.get("alpha", [0.1])
    alpha = [alpha] if is_number(alpha) else alpha
    if not (
        isinstance(alpha, list)
        and len(alpha) in (1, 2, 3)
        and all(is_number(a) and a >= 0 for a in alpha)
    ):
        raise SpecError(f"{where}: alpha must be a number or a list of 1-3 numbers >= 0")
    hyperparams = data.get("hyperparams") or {}
    if not isinstance(hyperparams, dict):
        raise SpecError(f"{where}: hyperparams must be a mapping")
    safeguards = _merge("safeguards", data.get("safeguards"), SAFEGUARD_DEFAULTS, where)
    if safeguards["feature_noise"] is not None:
        noise = _merge(
            "safeguards.feature_noise", safeguards["feature_noise"], NOISE_DEFAULTS, where
        )
        if noise["dropout"] > 1:
            raise SpecError(f"{where}: safeguards.feature_noise.dropout must be in [0, 1]")
        safeguards["feature_noise"] = noise
    if algo == "ppo":
        off_policy_only = [k for k in ("actor_penalty", "output_decay") if safeguards[k]]
        if off_policy_only:
            raise SpecError(
                f"{where}: safeguards {off_policy_only} apply to sac and td3 only, not ppo"
            )
    gated = data.get("gated")
    if gated is not None:
        if algo != "sac":
            raise SpecError(f"{where}: gated needs algo: sac, got {algo!r}")
        gated = _merge("gated", gated, GATED_DEFAULTS, where)
        if gated["n_critics"] < 2 or gated["temperature"] <= 0:
            raise SpecError(f"{where}: gated needs n_critics >= 2 and temperature > 0")
    base = data.get("base")
    if base is not None and not isinstance(base, str):
        raise SpecError(f"{where}: base must be a base name, got {base!r}")
    return ResidualConfig(
        base=base,
        name=path.stem,
        algo=algo,
        description=str(data.get("description", "")),
        features=features,
        alpha=[float(a) for a in alpha],
        hyperparams=hyperparams,
        safeguards=safeguards,
        train=_merge("train", data.get("train"), TRAIN_DEFAULTS, where),
        gated=gated,
    )
