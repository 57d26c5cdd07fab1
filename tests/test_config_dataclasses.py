"""Config sections are typed dataclasses, each default declared once: unknown fields are
refused by name, numbers are finite, left-out sections take the dataclass defaults, and the
shipped YAML files load to the values the dict-based loaders gave."""

import dataclasses
import inspect
import json

import pytest

from residual_bench.config_fields import (
    Section,
    TrainingConfig,
    build_section,
    field_default,
    field_names,
    non_negative,
)
from residual_bench.env_spec import SpecError
from residual_bench.finetune import config as finetune_config
from residual_bench.finetune.config import (
    DaggerConfig,
    DaggerTrainConfig,
    FinetuneRLConfig,
    finetune_names,
    load_finetune_config,
)
from residual_bench.finetune.dagger import finetune_dagger
from residual_bench.finetune.dagger_labels import collect_corrections
from residual_bench.finetune.rl import finetune_rl
from residual_bench.residual.config import (
    FeatureNoiseConfig,
    GatedConfig,
    ResidualTrainingConfig,
    SafeguardsConfig,
    config_names,
    load_config,
)
from residual_bench.residual.train import train_residual

# What the dict-based loaders returned for the shipped files (recorded once from them).
OLD_RESIDUAL = {
    "ppo": {
        "name": "ppo",
        "algo": "ppo",
        "description": "PPO residual, zero-initialised mean, small initial log-std",
        "features": "objects",
        "alpha": [0.3, 0.1, 0.3],
        "hyperparams": {
            "learning_rate": 0.0003,
            "n_steps": 2048,
            "batch_size": 256,
            "n_epochs": 10,
            "gamma": 0.97,
            "gae_lambda": 0.95,
            "clip_range": 0.2,
            "ent_coef": 0.0,
            "policy_kwargs": {"net_arch": [64, 64], "log_std_init": -1.0},
        },
        "safeguards": {
            "zero_init": True,
            "warmup_steps": 0,
            "critic_only_steps": 0,
            "output_decay": 0.0,
            "actor_penalty": 0.0,
            "exploration_ramp_steps": 0,
            "scale_ramp_steps": 20000,
            "magnitude_penalty": 0.05,
            "rate_penalty": 0.0,
            "feature_noise": None,
        },
        "train": {
            "steps": 300000,
            "suite": "mixed",
            "eval_every": 10000,
            "eval_episodes": 20,
            "checkpoint_every": 10000,
        },
        "gated": None,
        "base": None,
    },
    "sac": {
        "name": "sac",
        "algo": "sac",
        "description": "SAC residual, zero-initialised, base-only warm-up, progressive and quiet "
        "exploration",
        "features": "objects",
        "alpha": [0.3, 0.1, 0.3],
        "hyperparams": {
            "learning_rate": 0.0003,
            "buffer_size": 300000,
            "batch_size": 256,
            "learning_starts": 5000,
            "train_freq": 2,
            "gradient_steps": 1,
            "gamma": 0.97,
            "tau": 0.005,
            "ent_coef": "auto_0.1",
            "policy_kwargs": {"net_arch": [64, 64]},
        },
        "safeguards": {
            "zero_init": True,
            "warmup_steps": 5000,
            "critic_only_steps": 20000,
            "output_decay": 0.0,
            "actor_penalty": 0.4,
            "exploration_ramp_steps": 30000,
            "scale_ramp_steps": 0,
            "magnitude_penalty": 0.1,
            "rate_penalty": 0.0,
            "feature_noise": None,
            "exploration_std": 0.05,
        },
        "train": {
            "steps": 300000,
            "suite": "mixed",
            "eval_every": 10000,
            "eval_episodes": 20,
            "checkpoint_every": 10000,
        },
        "gated": None,
        "base": None,
    },
    "sac-gated": {
        "name": "sac-gated",
        "algo": "sac",
        "description": "SAC residual gated by critic-ensemble disagreement "
        "(scales alpha down where unsure)",
        "features": "objects",
        "alpha": [0.3, 0.1, 0.3],
        "hyperparams": {
            "learning_rate": 0.0003,
            "buffer_size": 300000,
            "batch_size": 256,
            "learning_starts": 5000,
            "train_freq": 2,
            "gradient_steps": 1,
            "gamma": 0.97,
            "tau": 0.005,
            "ent_coef": "auto_0.1",
            "policy_kwargs": {"net_arch": [64, 64]},
        },
        "safeguards": {
            "zero_init": True,
            "warmup_steps": 5000,
            "critic_only_steps": 20000,
            "output_decay": 0.0,
            "actor_penalty": 0.4,
            "exploration_ramp_steps": 30000,
            "scale_ramp_steps": 0,
            "magnitude_penalty": 0.1,
            "rate_penalty": 0.0,
            "feature_noise": None,
        },
        "train": {
            "steps": 300000,
            "suite": "mixed",
            "eval_every": 10000,
            "eval_episodes": 20,
            "checkpoint_every": 10000,
        },
        "gated": {"n_critics": 5, "temperature": 1.0},
        "base": None,
    },
    "scratch": {
        "name": "scratch",
        "algo": "sac",
        "description": "SAC from scratch, no base (the zero base with alpha 1)",
        "features": "objects",
        "alpha": [1.0, 1.0, 1.0],
        "hyperparams": {
            "learning_rate": 0.0003,
            "buffer_size": 300000,
            "batch_size": 256,
            "learning_starts": 5000,
            "train_freq": 2,
            "gradient_steps": 1,
            "gamma": 0.97,
            "tau": 0.005,
            "ent_coef": "auto",
            "policy_kwargs": {"net_arch": [64, 64]},
        },
        "safeguards": {
            "zero_init": False,
            "warmup_steps": 0,
            "critic_only_steps": 0,
            "output_decay": 0.0,
            "actor_penalty": 0.0,
            "exploration_ramp_steps": 0,
            "scale_ramp_steps": 0,
            "magnitude_penalty": 0.0,
            "rate_penalty": 0.0,
            "feature_noise": None,
        },
        "train": {
            "steps": 300000,
            "suite": "mixed",
            "eval_every": 10000,
            "eval_episodes": 20,
            "checkpoint_every": 10000,
        },
        "gated": None,
        "base": "zero",
    },
    "td3": {
        "name": "td3",
        "algo": "td3",
        "description": "TD3 residual, zero-initialised, base-only warm-up, progressive exploration",
        "features": "objects",
        "alpha": [0.3, 0.1, 0.3],
        "hyperparams": {
            "learning_rate": 0.0003,
            "buffer_size": 300000,
            "batch_size": 256,
            "learning_starts": 5000,
            "train_freq": 2,
            "gradient_steps": 1,
            "gamma": 0.97,
            "tau": 0.005,
            "action_noise_std": 0.2,
            "policy_kwargs": {"net_arch": [64, 64]},
        },
        "safeguards": {
            "zero_init": True,
            "warmup_steps": 5000,
            "critic_only_steps": 20000,
            "output_decay": 0.0,
            "actor_penalty": 0.4,
            "exploration_ramp_steps": 30000,
            "scale_ramp_steps": 0,
            "magnitude_penalty": 0.1,
            "rate_penalty": 0.0,
            "feature_noise": None,
        },
        "train": {
            "steps": 300000,
            "suite": "mixed",
            "eval_every": 10000,
            "eval_episodes": 20,
            "checkpoint_every": 10000,
        },
        "gated": None,
        "base": None,
    },
}
OLD_FINETUNE = {
    "finetune-dagger": {
        "name": "finetune-dagger",
        "method": "dagger",
        "applies_to": ["bc"],
        "description": "DAgger fine-tuning of the base's weights on expert "
        "relabels of the states it visits",
        "dagger": {
            "rounds": 4,
            "episodes_per_round": 50,
            "epochs_per_round": 2,
            "lr": 0.0003,
            "keypoint_weight": 1.0,
            "suites": ["nominal", "poke", "slide", "drop", "mixed"],
            "demonstrations": None,
            "demonstration_episodes": 100,
            "validation_episodes": 5,
            "train_frames": 24000,
        },
        "train": {"steps": 300000, "eval_suite": "mixed", "eval_episodes": 20},
    },
    "finetune-rl": {
        "name": "finetune-rl",
        "method": "rl",
        "applies_to": ["bc"],
        "description": "SAC fine-tuning of the base's weights, actor "
        "initialised from bc, fresh critic",
        "rl": {
            "algo": "sac",
            "initial_log_std": -2.0,
            "critic_only_steps": 20000,
            "actor_learning_rate": None,
            "freeze_encoder": False,
            "frozen_features": False,
            "bc_weight": 0.0,
            "hyperparams": {
                "learning_rate": 0.0001,
                "buffer_size": 50000,
                "batch_size": 64,
                "learning_starts": 500,
                "train_freq": 2,
                "gradient_steps": 1,
                "gamma": 0.9,
                "tau": 0.005,
                "ent_coef": "auto",
            },
        },
        "train": {
            "steps": 300000,
            "suite": "mixed",
            "eval_every": 10000,
            "eval_episodes": 20,
            "checkpoint_every": 10000,
        },
    },
    "finetune-rl-ppo": {
        "name": "finetune-rl-ppo",
        "method": "rl",
        "applies_to": ["bc"],
        "description": "PPO fine-tuning of the base's weights, actor "
        "initialised from bc, fresh critic",
        "rl": {
            "algo": "ppo",
            "initial_log_std": -2.0,
            "critic_only_steps": 0,
            "actor_learning_rate": None,
            "freeze_encoder": False,
            "frozen_features": False,
            "bc_weight": 0.0,
            "hyperparams": {
                "learning_rate": 0.0001,
                "n_steps": 512,
                "batch_size": 64,
                "n_epochs": 4,
                "gamma": 0.9,
                "gae_lambda": 0.95,
                "clip_range": 0.1,
                "ent_coef": 0.0,
            },
        },
        "train": {
            "steps": 300000,
            "suite": "mixed",
            "eval_every": 10000,
            "eval_episodes": 20,
            "checkpoint_every": 10000,
        },
    },
}
# The default dicts the old loaders merged a file's sections into.
OLD_SAFEGUARD_DEFAULTS = {
    "zero_init": True, "warmup_steps": 0, "critic_only_steps": 0, "output_decay": 0.0,
    "actor_penalty": 0.0, "exploration_ramp_steps": 0, "scale_ramp_steps": 0,
    "magnitude_penalty": 0.0, "rate_penalty": 0.0, "feature_noise": None,
}  # fmt: skip
# Fields added since, at their defaults: a file that does not name them gets the old values
# plus these.
ADDED_SAFEGUARDS = {
    "success_bonus": 0.0,
    "time_penalty": 0.0,
    "oracle_bc_weight": 0.0,
    "exploration_std": None,
    "critic_continuation": "residual",
}
ADDED_RESIDUAL_TRAIN = {"n_envs": 1, "oracle_episodes": 0, "reward": "dense"}
ADDED_RESIDUAL_TOP = {"gripper_deadband": 0.0, "base_plan_steps": 0}
OLD_NOISE_DEFAULTS = {"position_std_m": 0.005, "dropout": 0.05}
OLD_GATED_DEFAULTS = {"n_critics": 5, "temperature": 1.0}
OLD_TRAIN_DEFAULTS = {
    "steps": 300_000, "suite": "mixed", "eval_every": 10_000, "eval_episodes": 20,
    "checkpoint_every": 10_000,
}  # fmt: skip
OLD_DAGGER_DEFAULTS = {
    "rounds": 4, "episodes_per_round": 50, "epochs_per_round": 2, "lr": 3.0e-4,
    "keypoint_weight": 1.0, "suites": ["nominal", "poke", "slide", "drop", "mixed"],
    "demonstrations": None, "demonstration_episodes": 100, "validation_episodes": 5,
    "train_frames": None,
}  # fmt: skip
OLD_DAGGER_TRAIN_DEFAULTS = {"steps": None, "eval_suite": "mixed", "eval_episodes": 20}
OLD_RL_DEFAULTS = {
    "algo": "sac", "initial_log_std": -2.0, "critic_only_steps": 0,
    "actor_learning_rate": None, "freeze_encoder": False, "frozen_features": False,
    "bc_weight": 0.0,
    "hyperparams": {},
}  # fmt: skip


def as_json(value) -> str:
    """Key order counts: the residual's config is stored as JSON with every trained run."""
    return json.dumps(value)


def in_field_order(cls: type, values: dict) -> dict:
    """``values``, one per field of ``cls`` (no more, no fewer), in declaration order."""
    assert sorted(values) == sorted(field_names(cls))
    return {name: values[name] for name in field_names(cls)}


def with_added_fields(old: dict) -> dict:
    """A residual config's dict from the old loader, with the fields added since."""
    safeguards = in_field_order(SafeguardsConfig, {**ADDED_SAFEGUARDS, **old["safeguards"]})
    train = in_field_order(ResidualTrainingConfig, {**old["train"], **ADDED_RESIDUAL_TRAIN})
    return {**old, "safeguards": safeguards, "train": train, **ADDED_RESIDUAL_TOP}


@pytest.mark.parametrize("name", sorted(OLD_RESIDUAL))
def test_a_shipped_residual_config_loads_to_the_values_the_old_loader_gave(name):
    assert name in config_names()
    assert as_json(load_config(name).to_dict()) == as_json(with_added_fields(OLD_RESIDUAL[name]))


@pytest.mark.parametrize("name", sorted(OLD_FINETUNE))
def test_a_shipped_fine_tuning_config_loads_to_the_values_the_old_loader_gave(name):
    assert name in finetune_names()
    assert as_json(load_finetune_config(name).to_dict()) == as_json(OLD_FINETUNE[name])


def test_a_residual_config_that_omits_its_sections_gets_the_dataclass_defaults(tmp_path):
    path = tmp_path / "bare.yaml"
    path.write_text("algo: sac\ngated: {}\nsafeguards: {feature_noise: {}}\n")
    config = load_config(path)
    assert config.train == ResidualTrainingConfig()
    assert dataclasses.asdict(config.train) == {**OLD_TRAIN_DEFAULTS, **ADDED_RESIDUAL_TRAIN}
    assert config.gated == GatedConfig() and dataclasses.asdict(config.gated) == OLD_GATED_DEFAULTS
    assert config.safeguards.feature_noise == FeatureNoiseConfig()
    assert dataclasses.asdict(config.safeguards.feature_noise) == OLD_NOISE_DEFAULTS
    path.write_text("algo: sac\n")
    config = load_config(path)
    assert config.safeguards == SafeguardsConfig()
    defaults = in_field_order(SafeguardsConfig, {**OLD_SAFEGUARD_DEFAULTS, **ADDED_SAFEGUARDS})
    assert as_json(dataclasses.asdict(config.safeguards)) == as_json(defaults)
    assert config.alpha == [0.1] and config.features == "objects" and config.hyperparams == {}


def test_a_fine_tuning_config_that_omits_its_sections_gets_the_dataclass_defaults(tmp_path):
    path = tmp_path / "bare.yaml"
    path.write_text("method: dagger\n")
    config = load_finetune_config(path)
    assert config.dagger == DaggerConfig() and config.train == DaggerTrainConfig()
    assert as_json(dataclasses.asdict(config.dagger)) == as_json(OLD_DAGGER_DEFAULTS)
    assert dataclasses.asdict(config.train) == OLD_DAGGER_TRAIN_DEFAULTS
    assert config.applies_to == ["bc"] and config.description == ""
    path.write_text("method: rl\n")
    config = load_finetune_config(path)
    assert config.rl == FinetuneRLConfig() and config.train == TrainingConfig()
    assert as_json(dataclasses.asdict(config.rl)) == as_json(OLD_RL_DEFAULTS)
    assert dataclasses.asdict(config.train) == OLD_TRAIN_DEFAULTS


@pytest.mark.parametrize(
    ("text", "field", "valid"),
    [
        ("algo: sac\nsafeguards: {warmup_step: 5}\n", "safeguards.warmup_step", "warmup_steps"),
        ("algo: sac\ntrain: {step: 5}\n", "train.step", "checkpoint_every"),
        ("algo: sac\ngated: {critics: 5}\n", "gated.critics", "n_critics"),
        (
            "algo: sac\nsafeguards: {feature_noise: {std: 1.0}}\n",
            "safeguards.feature_noise.std",
            "position_std_m",
        ),
        ("algo: sac\nlearning_rate: 0.1\n", "learning_rate", "hyperparams"),
    ],
)
def test_an_unknown_residual_field_is_refused_naming_it_and_the_valid_ones(
    tmp_path, text, field, valid
):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="unknown field") as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and field in message and "valid: " in message
    assert valid in message.split("valid: ", 1)[1]


@pytest.mark.parametrize(
    ("text", "field", "valid"),
    [
        ("method: dagger\ndagger: {round: 2}\n", "dagger.round", "episodes_per_round"),
        ("method: dagger\ntrain: {suite: poke}\n", "train.suite", "eval_suite"),
        ("method: rl\nrl: {log_std: 1.0}\n", "rl.log_std", "initial_log_std"),
        ("method: rl\ntrain: {eval_suite: poke}\n", "train.eval_suite", "checkpoint_every"),
    ],
)
def test_an_unknown_fine_tuning_field_is_refused_naming_it_and_the_valid_ones(
    tmp_path, text, field, valid
):
    path = tmp_path / "ft.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="unknown field") as err:
        load_finetune_config(path)
    message = str(err.value)
    assert str(path) in message and field in message
    assert valid in message.split("valid: ", 1)[1]


NON_FINITE_RESIDUAL = [
    ("safeguards: {actor_penalty: .inf}", "safeguards.actor_penalty"),
    ("safeguards: {magnitude_penalty: .nan}", "safeguards.magnitude_penalty"),
    ("safeguards: {warmup_steps: .inf}", "safeguards.warmup_steps"),
    ("safeguards: {feature_noise: {position_std_m: .inf}}", "feature_noise.position_std_m"),
    ("gated: {temperature: .inf}", "gated.temperature"),
    ("train: {steps: .inf}", "train.steps"),
    ("alpha: [0.1, .inf, 0.1]", "alpha"),
    ("alpha: .nan", "alpha"),
    ("hyperparams: {learning_rate: .inf}", "hyperparams.learning_rate"),
    ("hyperparams: {policy_kwargs: {log_std_init: -.inf}}", "hyperparams.policy_kwargs"),
]


@pytest.mark.parametrize(("line", "field"), NON_FINITE_RESIDUAL)
def test_an_infinite_or_nan_residual_number_is_refused_naming_the_field(tmp_path, line, field):
    path = tmp_path / "mine.yaml"
    path.write_text(f"algo: sac\n{line}\n")
    with pytest.raises(SpecError) as err:
        load_config(path)
    assert str(path) in str(err.value) and field in str(err.value)


@pytest.mark.parametrize("alpha", ["[0.3, 0.3, 2.5]", "3", "[-0.1]"])
def test_a_residual_alpha_beyond_the_action_box_is_refused(tmp_path, alpha):
    path = tmp_path / "mine.yaml"
    path.write_text(f"algo: sac\nalpha: {alpha}\n")
    with pytest.raises(SpecError, match=r"alpha must be a number or a list of 1-3 numbers in"):
        load_config(path)
    path.write_text("algo: sac\nalpha: [0.3, 0.3, 2.0]\n")
    assert load_config(path).alpha == [0.3, 0.3, 2.0]


NON_FINITE_FINETUNE = [
    ("method: dagger\ndagger: {lr: .inf}", "dagger.lr"),
    ("method: dagger\ndagger: {keypoint_weight: .nan}", "dagger.keypoint_weight"),
    ("method: dagger\ndagger: {rounds: .inf}", "dagger.rounds"),
    ("method: rl\nrl: {initial_log_std: -.inf}", "rl.initial_log_std"),
    ("method: rl\nrl: {initial_log_std: .nan}", "rl.initial_log_std"),
    ("method: rl\nrl: {actor_learning_rate: .inf}", "rl.actor_learning_rate"),
    ("method: rl\nrl: {hyperparams: {learning_rate: .nan}}", "rl.hyperparams.learning_rate"),
    ("method: rl\ntrain: {steps: .inf}", "train.steps"),
]


@pytest.mark.parametrize(("text", "field"), NON_FINITE_FINETUNE)
def test_an_infinite_or_nan_fine_tuning_number_is_refused_naming_the_field(tmp_path, text, field):
    path = tmp_path / "ft.yaml"
    path.write_text(text + "\n")
    with pytest.raises(SpecError) as err:
        load_finetune_config(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_a_section_is_built_with_types_checked_and_values_kept_as_given():
    section = build_section(TrainingConfig, {"steps": 5}, "train", "f.yaml")
    assert section == TrainingConfig(steps=5)
    assert section.steps == 5 and not hasattr(section, "__getitem__")  # read by attribute
    noise = build_section(FeatureNoiseConfig, {"dropout": 0}, "noise", "f.yaml")
    assert noise.dropout == 0 and isinstance(noise.dropout, int)  # as the file gives it
    for given, message in (
        ([1], "train must be a mapping"),
        ({"steps": True}, "train.steps must be a non-negative integer, got True"),
        ({"steps": 1.5}, "train.steps must be a non-negative integer"),
        ({"suite": 3}, "train.suite must be text"),
        ({"eval_every": "1e4"}, "write 1.0e-5"),
    ):
        with pytest.raises(SpecError, match=message):
            build_section(TrainingConfig, given, "train", "f.yaml")


def test_every_field_of_every_section_is_documented_and_declares_its_own_default():
    sections = [
        TrainingConfig, ResidualTrainingConfig, SafeguardsConfig, FeatureNoiseConfig,
        GatedConfig, DaggerConfig, DaggerTrainConfig, FinetuneRLConfig,
    ]  # fmt: skip
    for cls in sections:
        assert issubclass(cls, Section)
        source = inspect.getsource(cls)
        for field in dataclasses.fields(cls):
            field_default(cls, field.name)  # every section field has a default
            if field.name not in vars(cls).get("__annotations__", {}):
                continue  # declared, and documented, by a base section

            # The string literal right under the field's declaration documents it.
            after = source.split(f"    {field.name}: ", 1)[1].split("\n", 1)[1].lstrip()
            assert after.startswith('"""'), f"{cls.__name__}.{field.name} has no docstring"
    assert non_negative(0).metadata["bound"] == "non-negative"


def test_the_old_default_dicts_and_repeated_signature_defaults_are_gone():
    for name in ("DAGGER_DEFAULTS", "TRAIN_DEFAULTS", "RL_DEFAULTS", "RL_TRAIN_DEFAULTS"):
        assert not hasattr(finetune_config, name)
    source = inspect.getsource(finetune_config)
    assert "residual.config" not in source  # the shared piece is one layer down
    sections = (
        DaggerConfig, DaggerTrainConfig, FinetuneRLConfig, TrainingConfig, ResidualTrainingConfig,
    )  # fmt: skip
    config_fields = {f.name for cls in sections for f in dataclasses.fields(cls)}
    for function in (finetune_dagger, finetune_rl, collect_corrections, train_residual):
        for name, parameter in inspect.signature(function).parameters.items():
            if name in config_fields and parameter.default is not inspect.Parameter.empty:
                assert parameter.default is None, f"{function.__name__}({name}=...) repeats it"


def test_a_residual_trains_in_one_env_unless_its_config_asks_for_more(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("algo: sac\ntrain: {n_envs: 4}\n")
    assert load_config(path).train.n_envs == 4
    assert ResidualTrainingConfig().n_envs == 1
    for bad in ("0", "-1", "1.5", "true"):
        path.write_text(f"algo: sac\ntrain: {{n_envs: {bad}}}\n")
        with pytest.raises(SpecError, match="train.n_envs must be a positive integer"):
            load_config(path)


def test_fine_tuning_has_no_n_envs_to_ignore(tmp_path):
    path = tmp_path / "ft.yaml"
    path.write_text("method: rl\ntrain: {n_envs: 2}\n")
    with pytest.raises(SpecError, match="unknown field.*train.n_envs"):
        load_finetune_config(path)


def test_the_success_terms_are_safeguards_that_default_to_zero_and_are_never_negative(tmp_path):
    assert (SafeguardsConfig().success_bonus, SafeguardsConfig().time_penalty) == (0.0, 0.0)
    path = tmp_path / "mine.yaml"
    path.write_text("algo: sac\nsafeguards: {success_bonus: 2, time_penalty: 0.01}\n")
    safeguards = load_config(path).safeguards
    assert (safeguards.success_bonus, safeguards.time_penalty) == (2, 0.01)
    for field in ("success_bonus", "time_penalty"):
        path.write_text(f"algo: sac\nsafeguards: {{{field}: -1.0}}\n")
        with pytest.raises(SpecError, match=f"safeguards.{field} must be a non-negative number"):
            load_config(path)
