"""Fine-tuning baselines: change the base's own weights instead of adding a residual.

The residual leaves the base untouched; these baselines are what it is compared against
(``bench train --base bc --residual finetune-dagger``). A fine-tuning config is a YAML file
under ``baselines/`` with ``method`` instead of ``algo``:

- ``dagger``: the expert relabels the states the base visits under the perturbation suites
  and the base is trained further on them (:mod:`residual_bench.finetune.dagger`).
- ``rl``: SAC or PPO trains the base's network end to end on the env's reward, the actor
  initialised from the bc weights (:mod:`residual_bench.finetune.rl`).

Fields, their types and their defaults are declared once, in the dataclasses below:
:class:`FinetuneConfig` (``method``, ``description``, ``applies_to``: the bases with weights
it can change), for ``dagger`` the sections :class:`DaggerConfig` (``dagger``) and
:class:`DaggerTrainConfig` (``train``), for ``rl`` the sections :class:`FinetuneRLConfig`
(``rl``) and :class:`~residual_bench.config_fields.TrainingConfig` (``train``: steps are
control steps, as for residuals). Every number is finite.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from residual_bench.config_fields import (
    Section,
    TrainingConfig,
    build_section,
    check_field,
    field_default,
    non_negative,
    positive,
)
from residual_bench.env_spec import SpecError, read_yaml, spec_dir

METHODS = ("dagger", "rl")


@dataclass
class DaggerConfig(Section):
    """``dagger``: the rounds of a DAgger fine-tuning run."""

    rounds: int = positive(4)
    """Rounds of collecting, relabelling and training (unless ``train.steps`` is set)."""
    episodes_per_round: int = positive(50)
    """Episodes the current network is rolled out for in a round."""
    epochs_per_round: int = positive(2)
    """Training epochs over the round's data."""
    lr: float = positive(3.0e-4)
    """The learning rate of a round's training."""
    keypoint_weight: float = positive(1.0)
    """Weight of the image-keypoint loss (see ``residual_bench.policies.bc.train``)."""
    suites: list[str] = field(default_factory=lambda: ["nominal", "poke", "slide", "drop", "mixed"])
    """The perturbation suites the rollouts cycle through."""
    demonstrations: str | None = None
    """A demonstrations file (of ``bench base collect``) to keep training on, or null for
    ``demonstration_episodes`` regenerated ones."""
    demonstration_episodes: int = non_negative(100)
    """Without a ``demonstrations`` file: this many demonstrations are recorded at the start
    of a run as ``bench base collect`` records them, from its seed 0 (the first episodes of
    the shipped network's own training data), and kept in every round's data; 0: the visited
    states alone, which is what fine-tuning with no access to the original data looks like."""
    validation_episodes: int = non_negative(5)
    """Of each round's episodes, the last this many are not trained on: their labelled frames
    are the validation loss's (``rounds.csv``)."""
    train_frames: int | None = positive(None)
    """The most visited-state frames one round trains on, whole episodes drawn from
    everything gathered, or null for all of it (the demonstrations come on top)."""


@dataclass
class DaggerTrainConfig(Section):
    """``train`` of a DAgger run: its budget and learning curve."""

    steps: int | None = positive(None)
    """A budget of environment steps that replaces ``dagger.rounds``, or null."""
    eval_suite: str = "mixed"
    """The suite of the learning curve's fixed held-out episodes."""
    eval_episodes: int = positive(20)
    """Held-out episodes per learning-curve point."""


@dataclass
class FinetuneRLConfig(Section):
    """``rl``: end-to-end RL fine-tuning of the base's network."""

    algo: str = "sac"
    """sac or ppo."""
    initial_log_std: float = -2.0
    """The exploration noise's log-std around the bc action."""
    critic_only_steps: int = non_negative(0)
    """Control steps whose SAC updates train the critic only, as the residuals' safeguard of
    the same name (sac only)."""
    actor_learning_rate: float | None = positive(None)
    """SAC's actor's own learning rate, or null for the hyperparams' one (sac only)."""
    freeze_encoder: bool = False
    """Train the actor's action head only, keeping the bc image encoder."""
    frozen_features: bool = False
    """Actor and critic read the bc encoder's output, frozen and computed once per decision:
    the action head alone is fine-tuned, the critic is fresh heads on the same features, and
    an update costs an MLP's pass instead of the image encoder's (sac only)."""
    bc_weight: float = non_negative(0.0)
    """TD3+BC's pull towards the base (sac only): every actor update adds
    ``bc_weight * mean|Q| * mean((mu(s) - a_base(s))^2)``, mu the actor's executed chunk and
    a_base the initial bc network's; relative to the critic's scale, so it does not depend
    on the reward's units. 0: the unregularised actor loss."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """SB3's keyword arguments for the algorithm."""


@dataclass
class FinetuneConfig(Section):
    """A parsed fine-tuning config: ``dagger`` is set for method dagger, ``rl`` for rl."""

    name: str
    """The config's name: its file's stem."""
    method: str
    """dagger or rl (required)."""
    applies_to: list[str] = field(default_factory=lambda: ["bc"])
    """The bases whose weights it can change."""
    description: str = ""
    """One line for ``bench list``."""
    dagger: DaggerConfig | None = None
    """The DAgger rounds (method dagger)."""
    rl: FinetuneRLConfig | None = None
    """The RL fine-tuning (method rl)."""
    train: DaggerTrainConfig | TrainingConfig = field(default_factory=DaggerTrainConfig)
    """The training protocol: :class:`DaggerTrainConfig` for dagger,
    :class:`~residual_bench.config_fields.TrainingConfig` for rl."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict: the fields, without the section of the other method."""
        other = "rl" if self.method == "dagger" else "dagger"
        out = dataclasses.asdict(self)
        del out[other]
        out[self.method] = out.pop(self.method)
        out["train"] = out.pop("train")
        return copy.deepcopy(out)


def config_path(name_or_path: str | Path) -> Path:
    """The YAML file of a shipped config name or a path (whether or not it exists)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    return spec_dir("baselines") / f"{name_or_path}.yaml"


def finetune_names() -> list[str]:
    """Names of the fine-tuning configs shipped under ``baselines/``."""
    return sorted(p.stem for p in spec_dir("baselines").glob("*.yaml") if is_finetune_config(p))


def is_finetune_config(name_or_path: str | Path) -> bool:
    """Whether a config names a fine-tuning baseline (``method``) rather than a residual."""
    path = config_path(name_or_path)
    return path.is_file() and "method" in read_yaml(path)


def load_finetune_config(name_or_path: str | Path) -> FinetuneConfig:
    """Read and check a fine-tuning config; errors name the file and the field."""
    path = config_path(name_or_path)
    data = read_yaml(path)
    where = str(path)
    if data.get("method") not in METHODS:
        raise SpecError(f"{where}: method must be one of {METHODS}, got {data.get('method')!r}")
    method = data["method"]
    known = {"method", "description", "applies_to", method, "train"}
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; valid: {sorted(known)}")
    applies_to = data.get("applies_to", field_default(FinetuneConfig, "applies_to"))
    if not isinstance(applies_to, list) or not all(isinstance(b, str) for b in applies_to):
        raise SpecError(f"{where}: applies_to must be a list of base names, got {applies_to!r}")
    description = str(data.get("description", field_default(FinetuneConfig, "description")))
    config = FinetuneConfig(
        name=path.stem, method=method, applies_to=applies_to, description=description
    )
    if method == "rl":
        config.rl = _check_rl(build_section(FinetuneRLConfig, data.get("rl"), "rl", where), where)
        config.train = train = build_section(TrainingConfig, data.get("train"), "train", where)
        for key in ("steps", "eval_every", "eval_episodes", "checkpoint_every"):
            check_field(getattr(train, key), int, f"train.{key}", where, bound="positive")
        return config
    config.dagger = build_section(DaggerConfig, data.get("dagger"), "dagger", where)
    config.train = build_section(DaggerTrainConfig, data.get("train"), "train", where)
    return config


def _check_rl(rl: FinetuneRLConfig, where: str) -> FinetuneRLConfig:
    if rl.algo not in ("sac", "ppo"):
        raise SpecError(f"{where}: rl.algo must be 'sac' or 'ppo', got {rl.algo!r}")
    if rl.critic_only_steps and rl.algo != "sac":
        raise SpecError(f"{where}: rl.critic_only_steps applies to SAC only (algo: sac)")
    if rl.actor_learning_rate is not None and rl.algo != "sac":
        raise SpecError(f"{where}: rl.actor_learning_rate applies to SAC only (algo: sac)")
    if rl.bc_weight and rl.algo != "sac":
        raise SpecError(f"{where}: rl.bc_weight applies to SAC only (algo: sac)")
    return rl


def check_applies(config: FinetuneConfig, base: str) -> None:
    """Refuse a base whose weights the baseline cannot change, saying what to use instead."""
    family = base.split(":", 1)[0]
    if family not in config.applies_to:
        bases = ", ".join(config.applies_to)
        raise ValueError(
            f"{config.name} fine-tunes a learned base's weights ({bases}); "
            f"it does not apply to {base!r}, which has none to change. Train a residual on it "
            "instead (--residual sac, td3, ppo or sac-gated)."
        )
