"""Residual agent configurations: the YAML files under ``baselines/``.

A config names the algorithm, the features, alpha, the SB3 hyperparameters, the safeguards
and the training protocol; ``bench train --residual sac`` reads ``baselines/sac.yaml`` (or any
YAML path). Unknown or mistyped fields are errors that name the file and the field.

The fields, their types and their defaults are declared once, in the dataclasses below:
:class:`ResidualConfig` (the top level), :class:`SafeguardsConfig` (``safeguards``),
:class:`FeatureNoiseConfig` (``safeguards.feature_noise``), :class:`GatedConfig`
(``gated``) and :class:`ResidualTrainingConfig` (``train``: the protocol
:class:`~residual_bench.config_fields.TrainingConfig` shared with RL fine-tuning, plus the
number of envs that collect experience). Every number is finite and, except alpha, >= 0.

An optional ``base`` ties a config to one base: ``scratch`` is SAC on the ``zero`` base (no
base at all, alpha 1), and ``bench train`` refuses it with any other.

The safeguards come from the residual-RL literature; each 0 / false switches it off (see
:class:`SafeguardsConfig`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from residual_bench.config_fields import (
    EXPONENT_HINT,
    Section,
    TrainingConfig,
    build_section,
    check_field,
    field_default,
    field_names,
    non_negative,
    positive,
)
from residual_bench.env_arguments import REWARD_MODES
from residual_bench.env_spec import SpecError, is_number, read_yaml, spec_dir
from residual_bench.residual.algorithms import ALGORITHM_NAMES, ALGORITHMS, OFF_POLICY_NAMES
from residual_bench.residual.critics import POLICIES
from residual_bench.residual.env import check_base_plan_steps
from residual_bench.residual.features import FEATURE_MODES, ObjectFeatureNoise
from residual_bench.spaces import MAX_ALPHA

LAYER_NORM_ALGORITHMS = tuple(POLICIES)
"""The algorithms whose critics take ``policy_kwargs.critic_layer_norm``."""

CRITIC_CONTINUATIONS = ("residual", "base")
"""What a critic's TD target may assume acts after the next step
(``safeguards.critic_continuation``)."""

BASE_CONTINUATION_ALGORITHMS = ("sac", "tqc")
"""The algorithms whose TD target can be the base's continuation: those whose target action
comes from the actor's ``action_log_prob`` (TD3's comes from its target actor, CrossQ's from
a joint pass with the current batch)."""


@dataclass
class FeatureNoiseConfig(Section):
    """``safeguards.feature_noise``: noise on the ``objects`` features while training."""

    position_std_m: float = non_negative(ObjectFeatureNoise.position_std_m)
    """Standard deviation of the Gaussian noise on object positions, in metres (default:
    :class:`~residual_bench.residual.features.ObjectFeatureNoise`'s)."""
    dropout: float = non_negative(ObjectFeatureNoise.dropout)
    """Probability, in [0, 1], that an object's detection is dropped in a step (default:
    :class:`~residual_bench.residual.features.ObjectFeatureNoise`'s)."""


@dataclass
class SafeguardsConfig(Section):
    """``safeguards``: the residual-RL safeguards; each 0 / false / null switches one off."""

    zero_init: bool = True
    """The actor's output layer starts at zero, so an untrained residual reproduces the base
    exactly."""
    warmup_steps: int = non_negative(0)
    """The first transitions are the base alone (r = 0), not random actions."""
    critic_only_steps: int = non_negative(0)
    """The actor stays frozen while the critic learns the base's values."""
    output_decay: float = non_negative(0.0)
    """Per update, the actor's output layer shrinks by this fraction, so a correction the
    critic does not keep asking for fades back to the base (off-policy algorithms only)."""
    actor_penalty: float = non_negative(0.0)
    """Weight of ``mean|Q| * mean(r^2)`` in the actor's loss (TD3+BC-style, relative to the
    critic's scale): the residual leaves zero only where the critic keeps asking for it
    (off-policy algorithms only)."""
    oracle_bc_weight: float = non_negative(0.0)
    """Weight of ``mean|Q| * mean((r - r_oracle)^2)`` on the states of the oracle episodes
    (``train.oracle_episodes``) in the actor's loss: TD3+BC's imitation term, towards the
    oracle's correction instead of the base (off-policy algorithms only)."""
    exploration_ramp_steps: int = non_negative(0)
    """H: the residual acts with probability min(t / H, 1), else 0."""
    scale_ramp_steps: int = non_negative(0)
    """Alpha grows linearly from 0 to its value over this many steps."""
    magnitude_penalty: float = non_negative(0.0)
    """Reward penalty on |r|^2."""
    rate_penalty: float = non_negative(0.0)
    """Reward penalty on changes of the action between steps."""
    success_bonus: float = non_negative(0.0)
    """Reward added once per episode, at the first step where the task succeeds."""
    time_penalty: float = non_negative(0.0)
    """Reward subtracted at every step before the episode's first success: time pressure, so
    a residual can make the base faster."""
    feature_noise: FeatureNoiseConfig | None = None
    """Pose noise and detection dropout on the ``objects`` features, or null for none."""
    exploration_std: float | None = None  # last: stored configs keep their key order
    """Std of the exploration noise in units of the executed action, the same in every
    dimension (the residual's own std is this divided by each dimension's alpha); SAC, TQC
    and CrossQ also target the entropy of that noise, so it stays about this small, and TD3
    draws its noise with it. null: the residual's log-std starts at -1 in every dimension
    (std 0.37 of r, whatever alpha: 0.74 of the gripper's range at alpha 2)."""
    critic_continuation: str = "residual"
    """What the critic's TD target assumes acts after the next step: ``residual`` (the base
    plus the residual being trained, as SAC and TQC do) or ``base`` (the base alone, r = 0,
    with no entropy term): the critic then values the base's own continuation, a fixed
    policy, and the actor is a one-step improvement on the base instead of chasing the
    values of its own, changing policy (SAC and TQC only)."""


@dataclass
class ResidualTrainingConfig(TrainingConfig):
    """``train`` of a residual config: the shared protocol, plus the envs that collect
    experience (RL fine-tuning steps one env, and has no such field)."""

    n_envs: int = positive(1)
    """Envs stepped side by side, each in a process of its own (1: one env, in this process).
    Steps, warm-up and ramps count transitions of all envs together, and off-policy agents
    make ``n_envs`` times the config's ``gradient_steps`` per ``train_freq`` step, so the
    update-to-data ratio stays ``gradient_steps / train_freq`` (docs/residuals.md). A run
    resumes only with the count it started with."""
    oracle_episodes: int = non_negative(0)
    """Episodes of the oracle residual (:mod:`~residual_bench.residual.oracle`: the correction
    that makes the base act as the privileged expert) added to the replay buffer before the
    first step, so the critic sees what large corrections earn (off-policy agents, one env;
    0: none)."""
    reward: str = "dense"  # last: stored configs keep their key order
    """The task's reward the residual learns from: ``dense`` (staged shaping) or ``sparse``
    (1 at every step the task is solved). Dense shaping pays nearly as much per step for
    holding the object over the goal as for a finished place, so a residual can learn not
    to let go (results/residual/README.md); sparse pays only for success."""


@dataclass
class GatedConfig(Section):
    """``gated``: a SAC residual scaled down where a critic ensemble disagrees."""

    n_critics: int = positive(5)
    """Critics in the ensemble (at least 2)."""
    temperature: float = positive(1.0)
    """How sharply disagreement scales the residual down (> 0)."""


@dataclass
class ResidualConfig(Section):
    """A parsed residual agent configuration (see the module docstring).

    ``name`` is the file's stem; every other field is a key of the YAML file.
    """

    name: str
    """The config's name: its file's stem."""
    algo: str
    """The algorithm, a name in :data:`~residual_bench.residual.algorithms.ALGORITHMS`: sac,
    td3, ppo, tqc or crossq (required)."""
    description: str = ""
    """One line for ``bench list``."""
    features: str = "objects"
    """What the residual observes: objects, privileged, global or proprio."""
    alpha: list[float] = field(default_factory=lambda: [0.1])
    """The residual's authority: one number, or 1-3 numbers (position, rotation, gripper)."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """SB3's keyword arguments for the algorithm."""
    safeguards: SafeguardsConfig = field(default_factory=SafeguardsConfig)
    """The safeguards (:class:`SafeguardsConfig`)."""
    train: ResidualTrainingConfig = field(default_factory=ResidualTrainingConfig)
    """The training protocol (:class:`ResidualTrainingConfig`)."""
    gated: GatedConfig | None = None
    """Critic-ensemble gating (sac only), or null for none."""
    base: str | None = None
    """The one base this config is made for, or null for any."""
    gripper_deadband: float = 0.0
    """d in [0, 1): the gripper's residual acts only beyond |r| = d
    (:func:`~residual_bench.residual.env.deadband`); 0: no band."""
    base_plan_steps: int = 0  # last: stored configs keep their key order
    """N in 0..16: the residual also observes the base's next N already-decided actions and
    the age of the base's action (``base_plan``, :mod:`~residual_bench.residual.env`); 0:
    only its current action."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict, stored with every trained residual."""
        return copy.deepcopy(dataclasses.asdict(self))


def config_names() -> list[str]:
    """Names of the shipped residual configs (``baselines/*.yaml`` with an ``algo``; the
    fine-tuning baselines have a ``method`` instead)."""
    paths = spec_dir("baselines").glob("*.yaml")
    return sorted(p.stem for p in paths if "algo" in read_yaml(p))


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
    known = set(field_names(ResidualConfig)) - {"name"}
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; valid: {sorted(known)}")
    algo = data.get("algo")
    if algo not in ALGORITHMS:
        raise SpecError(
            f"{where}: algo must be one of {', '.join(ALGORITHM_NAMES)}, got {str(algo)[:40]!r}"
        )
    features = data.get("features", field_default(ResidualConfig, "features"))
    if features not in FEATURE_MODES:
        raise SpecError(
            f"{where}: features must be one of {', '.join(FEATURE_MODES)}, got {features!r}"
        )
    if features == "global" and ALGORITHMS[algo].policy_class("MultiInputPolicy") is None:
        raise SpecError(
            f"{where}: features: global needs an image policy, which {algo} does not have; "
            f"use objects, privileged or proprio"
        )
    alpha = data.get("alpha", field_default(ResidualConfig, "alpha"))
    alpha = [alpha] if is_number(alpha) else alpha
    if not (
        isinstance(alpha, list)
        and len(alpha) in (1, 2, 3)
        and all(is_number(a) and math.isfinite(a) and 0 <= a <= MAX_ALPHA for a in alpha)
    ):
        raise SpecError(
            f"{where}: alpha must be a number or a list of 1-3 numbers in [0, {MAX_ALPHA:g}]"
        )
    band = data.get("gripper_deadband", field_default(ResidualConfig, "gripper_deadband"))
    if not (is_number(band) and 0 <= band < 1):
        raise SpecError(f"{where}: gripper_deadband must be a number in [0, 1), got {band!r}")
    plan = data.get("base_plan_steps", field_default(ResidualConfig, "base_plan_steps"))
    try:
        plan = check_base_plan_steps(plan)
    except ValueError as err:
        raise SpecError(f"{where}: {err}") from None
    hyperparams = data.get("hyperparams") or field_default(ResidualConfig, "hyperparams")
    hyperparams = check_field(hyperparams, dict[str, Any], "hyperparams", where)
    n_step = hyperparams.get("n_step_returns", 1)
    if not (isinstance(n_step, int) and not isinstance(n_step, bool) and 1 <= n_step <= 50):
        raise SpecError(
            f"{where}: hyperparams.n_step_returns must be an integer from 1 to 50, "
            f"got {str(n_step)[:40]!r}"
        )
    if n_step > 1 and not ALGORITHMS[algo].off_policy:
        raise SpecError(
            f"{where}: hyperparams.n_step_returns applies to the off-policy algorithms "
            f"({', '.join(OFF_POLICY_NAMES)}) only, not {algo}"
        )
    actor_lr = hyperparams.get("actor_learning_rate")
    if actor_lr is not None:
        if not (is_number(actor_lr) and math.isfinite(actor_lr) and actor_lr > 0):
            hint = EXPONENT_HINT if isinstance(actor_lr, str) else ""
            raise SpecError(
                f"{where}: hyperparams.actor_learning_rate must be a number > 0, "
                f"got {str(actor_lr)[:40]!r}{hint}"
            )
        if not ALGORITHMS[algo].off_policy:
            raise SpecError(
                f"{where}: hyperparams.actor_learning_rate applies to the off-policy algorithms "
                f"({', '.join(OFF_POLICY_NAMES)}) only, not {algo}"
            )
    policy_kwargs = hyperparams.get("policy_kwargs") or {}
    if isinstance(policy_kwargs, dict) and "critic_layer_norm" in policy_kwargs:
        if not isinstance(policy_kwargs["critic_layer_norm"], bool):
            raise SpecError(f"{where}: hyperparams.policy_kwargs.critic_layer_norm: true or false")
        if algo not in LAYER_NORM_ALGORITHMS:
            raise SpecError(
                f"{where}: hyperparams.policy_kwargs.critic_layer_norm applies to "
                f"{', '.join(LAYER_NORM_ALGORITHMS)} only, not {algo}"
            )
    safeguards = build_section(SafeguardsConfig, data.get("safeguards"), "safeguards", where)
    noise = safeguards.feature_noise
    std = safeguards.exploration_std
    if std is not None and not 0 < std <= 1:
        raise SpecError(f"{where}: safeguards.exploration_std must be in (0, 1], got {std!r}")
    if safeguards.critic_continuation not in CRITIC_CONTINUATIONS:
        raise SpecError(
            f"{where}: safeguards.critic_continuation must be one of "
            f"{', '.join(CRITIC_CONTINUATIONS)}, got {str(safeguards.critic_continuation)[:40]!r}"
        )
    if safeguards.critic_continuation == "base" and algo not in BASE_CONTINUATION_ALGORITHMS:
        raise SpecError(
            f"{where}: safeguards.critic_continuation: base applies to "
            f"{', '.join(BASE_CONTINUATION_ALGORITHMS)} only, not {algo}"
        )
    if noise is not None and noise.dropout > 1:
        raise SpecError(f"{where}: safeguards.feature_noise.dropout must be in [0, 1]")
    if not ALGORITHMS[algo].off_policy:
        off_policy_only = ("actor_penalty", "output_decay", "oracle_bc_weight", "exploration_std")
        off_policy_only = [k for k in off_policy_only if getattr(safeguards, k)]
        if off_policy_only:
            raise SpecError(
                f"{where}: safeguards {off_policy_only} apply to the off-policy algorithms "
                f"({', '.join(OFF_POLICY_NAMES)}) only, not {algo}"
            )
    train = build_section(ResidualTrainingConfig, data.get("train"), "train", where)
    if train.reward not in REWARD_MODES:
        raise SpecError(
            f"{where}: train.reward must be one of {', '.join(REWARD_MODES)}, "
            f"got {str(train.reward)[:40]!r}"
        )
    if train.oracle_episodes and not (ALGORITHMS[algo].off_policy and train.n_envs == 1):
        raise SpecError(
            f"{where}: train.oracle_episodes seeds the replay buffer of an off-policy agent "
            f"stepping one env ({', '.join(OFF_POLICY_NAMES)}, train.n_envs 1); "
            f"this config has {algo} with n_envs {train.n_envs}"
        )
    if safeguards.oracle_bc_weight and not train.oracle_episodes:
        raise SpecError(
            f"{where}: safeguards.oracle_bc_weight imitates the oracle episodes; "
            "set train.oracle_episodes too"
        )
    gated = data.get("gated")
    if gated is not None:
        if algo != "sac":
            raise SpecError(f"{where}: gated needs algo: sac, got {algo!r}")
        gated = build_section(GatedConfig, gated, "gated", where)
        if gated.n_critics < 2:
            raise SpecError(f"{where}: gated needs n_critics >= 2 and temperature > 0")
    base = data.get("base")
    if base is not None and not isinstance(base, str):
        raise SpecError(f"{where}: base must be a base name, got {base!r}")
    return ResidualConfig(
        base=base,
        name=path.stem,
        algo=algo,
        description=str(data.get("description", field_default(ResidualConfig, "description"))),
        features=features,
        alpha=[float(a) for a in alpha],
        gripper_deadband=float(band),
        base_plan_steps=plan,
        hyperparams=hyperparams,
        safeguards=safeguards,
        train=train,
        gated=gated,
    )
