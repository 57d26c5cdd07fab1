"""Fine-tuning baselines: change the base's own weights instead of adding a residual.

The residual leaves the base untouched; these baselines are what it is compared against
(``bench train --base bc --residual finetune-dagger``). A fine-tuning config is a YAML file
under ``baselines/`` with ``method`` instead of ``algo``:

- ``dagger``: the expert relabels the states the base visits under the perturbation suites
  and the base is trained further on them (:mod:`residual_bench.finetune.dagger`).
- ``rl``: SAC or PPO trains the base's network end to end on the env's reward, the actor
  initialised from the bc weights (:mod:`residual_bench.finetune.rl`).

Fields: ``method``, ``description``, ``applies_to`` (the bases with weights it can change),
``dagger`` (rounds, episodes_per_round, epochs_per_round, lr, keypoint_weight: the weight of
the image-keypoint loss (see ``residual_bench.policies.bc.train``), suites, demonstrations: a
demonstrations file to keep training on, or null for the visited states alone, train_frames:
the most frames one round trains on, whole episodes drawn from everything gathered, or null
for all of it) and ``train`` (steps: a budget of environment steps that replaces ``rounds``,
or null; eval_suite, eval_episodes: the learning curve's fixed held-out episodes); for ``rl``
instead ``rl`` (algo: sac or ppo, initial_log_std: the exploration noise's log-std around the
bc action, critic_only_steps: control steps whose SAC updates train the critic only, as the
residuals' safeguard of the same name, actor_learning_rate: SAC's actor's own learning rate,
or null for the hyperparams' one, freeze_encoder: train the actor's action head only,
hyperparams: SB3's keyword arguments) and ``train``
(steps: control steps, suite, eval_every, eval_episodes, checkpoint_every - as for residuals).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from residual_bench.env_spec import SpecError, read_yaml, spec_dir
from residual_bench.residual.config import merge_section
from residual_bench.run_directory import run_lock

METHODS = ("dagger", "rl")
DAGGER_DEFAULTS: dict[str, Any] = {
    "rounds": 4,
    "episodes_per_round": 50,
    "epochs_per_round": 2,
    "lr": 3.0e-4,
    "keypoint_weight": 1.0,
    "suites": ["nominal", "poke", "slide", "drop", "mixed"],
    "demonstrations": None,
    "train_frames": None,
}
TRAIN_DEFAULTS: dict[str, Any] = {"steps": None, "eval_suite": "mixed", "eval_episodes": 20}
RL_DEFAULTS: dict[str, Any] = {
    "algo": "sac",
    "initial_log_std": -2.0,
    "critic_only_steps": 0,
    "actor_learning_rate": None,
    "freeze_encoder": False,
    "hyperparams": {},
}
RL_TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 300_000,
    "suite": "mixed",
    "eval_every": 10_000,
    "eval_episodes": 20,
    "checkpoint_every": 10_000,
}


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


def load_finetune_config(name_or_path: str | Path) -> dict[str, Any]:
    """Read and check a fine-tuning config; errors name the file and the field."""
    path = config_path(name_or_path)
    data = read_yaml(path)
    where = str(path)
    if data.get("method") not in METHODS:
        raise SpecError(f"{where}: method must be one of {METHODS}, got {data.get('method')!r}")
    method = data["method"]
    known = {"method", "description", "applies_to", method, "train"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; valid: {sorted(known)}")
    applies_to = data.get("applies_to", ["bc"])
    if not isinstance(applies_to, list) or not all(isinstance(b, str) for b in applies_to):
        raise SpecError(f"{where}: applies_to must be a list of base names, got {applies_to!r}")
    config = {"name": path.stem, "method": data["method"], "applies_to": applies_to}
    config["description"] = str(data.get("description", ""))
    if method == "rl":
        return _check_rl(config, data, where)
    for section, defaults in (("dagger", DAGGER_DEFAULTS), ("train", TRAIN_DEFAULTS)):
        config[section] = merge_section(section, data.get(section), defaults, where)
    dagger = config["dagger"]
    _check_positive_ints(
        dagger, "dagger", ("rounds", "episodes_per_round", "epochs_per_round"), where
    )
    if dagger["train_frames"] is not None:
        _check_positive_ints(dagger, "dagger", ("train_frames",), where)
    if config["train"]["steps"] is not None:
        _check_positive_ints(config["train"], "train", ("steps",), where)
    for key in ("lr", "keypoint_weight"):
        _check_positive_number(dagger, "dagger", key, where)
    return config


def _check_rl(config: dict[str, Any], data: dict[str, Any], where: str) -> dict[str, Any]:
    config["rl"] = rl = merge_section("rl", data.get("rl"), RL_DEFAULTS, where)
    config["train"] = train = merge_section("train", data.get("train"), RL_TRAIN_DEFAULTS, where)
    if rl["algo"] not in ("sac", "ppo"):
        raise SpecError(f"{where}: rl.algo must be 'sac' or 'ppo', got {rl['algo']!r}")
    if not isinstance(rl["hyperparams"], dict):
        raise SpecError(f"{where}: rl.hyperparams must be a mapping of SB3 arguments")
    log_std = rl["initial_log_std"]
    if not isinstance(log_std, int | float) or isinstance(log_std, bool):
        raise SpecError(f"{where}: rl.initial_log_std must be a number")
    warmup = rl["critic_only_steps"]
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise SpecError(f"{where}: rl.critic_only_steps must be a non-negative integer")
    if warmup and rl["algo"] != "sac":
        raise SpecError(f"{where}: rl.critic_only_steps applies to SAC only (algo: sac)")
    if rl["actor_learning_rate"] is not None:
        _check_positive_number(rl, "rl", "actor_learning_rate", where)
        if rl["algo"] != "sac":
            raise SpecError(f"{where}: rl.actor_learning_rate applies to SAC only (algo: sac)")
    if not isinstance(rl["freeze_encoder"], bool):
        raise SpecError(f"{where}: rl.freeze_encoder must be true or false")
    keys = ("steps", "eval_every", "eval_episodes", "checkpoint_every")
    _check_positive_ints(train, "train", keys, where)
    return config


def _check_positive_number(section: dict[str, Any], name: str, key: str, where: str) -> None:
    value = section[key]
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return
    # YAML 1.1 reads an exponent without a decimal point (1e-5) as a string.
    hint = " (YAML reads 1e-5 as text: write 1.0e-5)" if isinstance(value, str) else ""
    raise SpecError(f"{where}: {name}.{key} must be a positive number, got {value!r}{hint}")


def _check_positive_ints(
    section: dict[str, Any], name: str, keys: tuple[str, ...], where: str
) -> None:
    for key in keys:
        value = section[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SpecError(f"{where}: {name}.{key} must be a positive integer")


def check_applies(config: dict[str, Any], base: str) -> None:
    """Refuse a base whose weights the baseline cannot change, saying what to use instead."""
    family = base.split(":", 1)[0]
    if family not in config["applies_to"]:
        bases = ", ".join(config["applies_to"])
        raise ValueError(
            f"{config['name']} fine-tunes a learned base's weights ({bases}); "
            f"it does not apply to {base!r}, which has none to change. Train a residual on it "
            "instead (--residual sac, td3, ppo or sac-gated)."
        )


def train_finetune(
    base: str,
    name_or_path: str | Path,
    out: str | Path,
    seed: int = 0,
    progress: bool = True,
    steps: int | None = None,
    suite: str | None = None,
    resume: bool = False,
) -> Path:
    """Run a fine-tuning baseline on ``base``; returns the fine-tuned checkpoint.

    ``base`` is ``bc`` (the shipped weights) or ``bc:PATH``. The learning curve goes to
    ``out/progress.csv`` (environment steps, success on fixed held-out episodes); re-running
    with the same ``out`` resumes (RL fine-tuning only with ``resume``: its checkpoint is
    unpickled). ``steps`` and ``suite`` override an ``rl`` config's
    budget and training suite; for DAgger ``steps`` overrides its budget (``train.steps``,
    or its rounds) and the suites are the config's. One process at a time may train into
    ``out`` (:func:`~residual_bench.run_directory.run_lock`).
    """
    from residual_bench.finetune.dagger import finetune_dagger

    config = load_finetune_config(name_or_path)
    check_applies(config, base)
    init = base.split(":", 1)[1] if ":" in base else None
    if config["method"] != "rl" and suite is not None:
        raise ValueError(
            f"{config['name']} rolls the base out under the suites its config lists "
            f"(dagger.suites); --suite applies to residuals and RL fine-tuning only"
        )
    with run_lock(out):
        if config["method"] == "rl":
            from residual_bench.finetune.rl import finetune_rl

            rl, train = config["rl"], config["train"]
            return finetune_rl(
                out,
                init=init,
                algo=rl["algo"],
                hyperparams=rl["hyperparams"],
                initial_log_std=float(rl["initial_log_std"]),
                critic_only_steps=rl["critic_only_steps"],
                actor_learning_rate=rl["actor_learning_rate"],
                freeze_encoder=rl["freeze_encoder"],
                steps=int(steps if steps is not None else train["steps"]),
                suite=suite or train["suite"],
                eval_every=train["eval_every"],
                eval_episodes=train["eval_episodes"],
                checkpoint_every=train["checkpoint_every"],
                seed=seed,
                progress=progress,
                resume=resume,
            )
        dagger, train = config["dagger"], config["train"]
        return finetune_dagger(
            out,
            demonstrations=dagger["demonstrations"],
            init=init,
            rounds=dagger["rounds"],
            episodes_per_round=dagger["episodes_per_round"],
            epochs_per_round=dagger["epochs_per_round"],
            suites=tuple(dagger["suites"]),
            lr=float(dagger["lr"]),
            keypoint_weight=float(dagger["keypoint_weight"]),
            seed=seed,
            eval_suite=train["eval_suite"],
            eval_episodes=train["eval_episodes"],
            progress=progress,
            steps=steps if steps is not None else train["steps"],
            train_frames=dagger["train_frames"],
        )
