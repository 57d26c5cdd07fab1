"""The ``finetune-dagger`` baseline: the expert relabels what the learned base visits, and the
base's own weights are trained on it; fine-tuning configs and who they apply to."""

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch

from residual_bench.cli import main
from residual_bench.env_spec import SpecError
from residual_bench.finetune.config import (
    DaggerConfig,
    DaggerTrainConfig,
    check_applies,
    load_finetune_config,
)
from residual_bench.finetune.dagger import (
    FRAME_ARRAYS,
    finetune_dagger,
    kept_demonstrations,
    merge_frames,
    sample_episodes,
    validation_frames,
)
from residual_bench.finetune.dagger_labels import collect_corrections, expert_chunk, sync_phase
from residual_bench.policies.bc.data import collection_done, demonstration_expert
from residual_bench.policies.bc.model import load_checkpoint, shipped_checkpoint
from residual_bench.policies.bc.train import chunk_targets, frame_targets, train_bc
from residual_bench.policies.expert import Phase, ScriptedExpert
from residual_bench.policies.registry import get_base
from residual_bench.residual.config import config_names
from residual_bench.seeding import episode_seed


@pytest.fixture(scope="module")
def corrections():
    return collect_corrections(1, suites=("drop",), seed=5, progress=False)


def test_every_state_the_base_visits_is_labelled_by_the_expert(corrections):
    data, summary = corrections
    n = len(data["action"])
    assert summary == {"env_steps": n, "episodes": 1, "successes": summary["successes"]}
    assert n > 20 and data["rgb"].shape == (n, 84, 84, 3)
    assert set(data) == set(FRAME_ARRAYS) and np.all(data["episode"] == 0)
    # Labels are the expert's chunks (bounded, absolute gripper +-1), as long as the network's.
    assert data["action_chunk"].shape == (n, 4, 7)
    np.testing.assert_array_equal(data["action_chunk"][:, 0], data["action"])
    assert np.all(np.abs(data["action_chunk"]) <= 1.0)
    assert set(np.unique(data["action_chunk"][..., 6])) <= {-1.0, 1.0}


def _expert_then_still(seed, frozen_at):
    """The demonstration expert in control for ``frozen_at`` steps, then a hand held still;
    a shadow expert labels every state with :func:`expert_chunk`, as DAgger does.

    Returns the label chunks and the shadow's per-step actions (the labels before they
    became chunks)."""
    env = gym.make("ResidualPickPlace-v1")
    env.reset(seed=seed)
    driver, shadow = demonstration_expert(), demonstration_expert()
    driver.reset()
    shadow.reset()
    chunks = []
    for t in range(frozen_at + 4):
        sync_phase(shadow, env)
        chunks.append(expert_chunk(shadow, env, 4))
        env.step(driver.act(env) if t < frozen_at else np.array([0, 0, 0, 0, 0, 0, 1.0]))
    env.close()
    return np.array(chunks), np.array([c[0] for c in chunks])


def _expert_actions(seed, steps):
    env = gym.make("ResidualPickPlace-v1")
    env.reset(seed=seed)
    expert = demonstration_expert()
    expert.reset()
    actions = []
    for _ in range(steps):
        actions.append(expert.act(env))
        env.step(actions[-1])
    env.close()
    return np.array(actions)


@pytest.mark.parametrize("frozen_at", [12, 25])  # closing in on the object; about to lift
def test_a_label_is_the_chunk_the_expert_would_record_from_that_state_whoever_moves_next(
    frozen_at,
):
    seed = episode_seed(5, "dagger", 0, 0)
    chunks, per_step = _expert_then_still(seed, frozen_at)
    # What a demonstration records from that state: the expert's next 4 actions, in control.
    demo = _expert_actions(seed, frozen_at + 4)[frozen_at:]
    dims = [0, 1, 2, 6]
    label = chunks[frozen_at]
    np.testing.assert_array_equal(label[0], demo[0])
    # The later rows plan for an arm that tracks its commands; the real arm lags a little.
    assert np.abs(label[:, dims] - demo[:, dims]).max() < 0.3
    # The labels at the states the still hand visits next are not that chunk: they ask for
    # the remaining motion again every step (or close where the expert would lift).
    assert np.abs(per_step[frozen_at:][:, dims] - demo[:, dims]).max() > 0.6


def test_on_the_demonstrations_own_states_the_labels_reproduce_the_demonstrations_chunks():
    seed = episode_seed(0, "bc-demos", "train", 0)  # how bench base collect seeds episode 0
    env = gym.make("ResidualPickPlace-v1")
    # Without the DART noise, which a chunk recorded from a state answers but cannot foresee.
    demo, shadow = demonstration_expert(), demonstration_expert()
    env.reset(seed=seed)
    demo.reset()
    shadow.reset()
    actions, labels, info = [], [], {"first_success_time": None, "time": 0.0}
    while not collection_done(info) and len(actions) < 240:
        actions.append(demo.act(env))
        sync_phase(shadow, env)
        labels.append(expert_chunk(shadow, env, 4))
        info = env.step(actions[-1])[4]
    env.close()
    assert info["first_success_time"] is not None
    recorded = chunk_targets(np.array(actions), np.zeros(len(actions), int), 4)
    labels = np.array(labels)
    np.testing.assert_array_equal(labels[:, 0], recorded[:, 0])
    dims = [0, 1, 2, 6]
    # Off by the arm's lag behind its commands, which the later rows do not model (0.035).
    assert np.abs(labels[..., dims] - recorded[..., dims]).mean() < 0.06


def test_collection_is_reproducible_from_its_seed(corrections):
    again, _ = collect_corrections(1, suites=("drop",), seed=5, progress=False)
    np.testing.assert_array_equal(again["action"], corrections[0]["action"])


def test_a_shadow_expert_carries_an_object_the_base_grasped_on_its_own():
    env = gym.make("ResidualPickPlace-v1")
    env.reset(seed=0)
    expert = ScriptedExpert()
    expert.reset()
    while expert.phase not in (Phase.LIFT, Phase.TRANSPORT):
        env.step(expert.act(env))
    # The learned base, not the expert, got here: the shadow still thinks it is approaching.
    expert.phase = Phase.APPROACH
    sync_phase(expert, env)
    assert expert.phase in (Phase.LIFT, Phase.TRANSPORT)
    assert expert.act(env)[6] == -1.0  # keeps holding it
    env.close()


def test_a_shadow_expert_with_nothing_in_hand_keeps_its_phase():
    env = gym.make("ResidualPickPlace-v1")
    env.reset(seed=0)
    expert = ScriptedExpert()
    expert.reset()
    sync_phase(expert, env)
    assert expert.phase == Phase.APPROACH
    env.close()


def test_merged_data_sets_never_share_an_episode_id(corrections):
    data = corrections[0]
    merged = merge_frames(data, data)
    assert len(merged["action"]) == 2 * len(data["action"])
    assert set(np.unique(merged["episode"])) == {0, 1}


def test_fine_tuning_starts_from_the_given_weights(corrections, tmp_path):
    out = tmp_path / "tuned.pt"
    train_bc(corrections[0], out, epochs=1, lr=0.0, progress=False, init=shipped_checkpoint())
    start, tuned = load_checkpoint(shipped_checkpoint()), load_checkpoint(out)
    assert all(torch.equal(start["model"][k], tuned["model"][k]) for k in start["model"])
    assert torch.equal(torch.as_tensor(start["proprio_mean"]), tuned["proprio_mean"])


def test_a_dagger_run_writes_a_learning_curve_and_resumes_without_redoing_rounds(
    tmp_path, monkeypatch
):
    dagger = DaggerConfig(
        rounds=1, episodes_per_round=1, epochs_per_round=1, suites=["nominal"],
        demonstration_episodes=0, validation_episodes=0,
    )  # fmt: skip
    options = dict(dagger=dagger, train=DaggerTrainConfig(eval_episodes=1), progress=False)
    final = finetune_dagger(tmp_path, **options)
    assert load_checkpoint(final)["provenance"]["init"] == shipped_checkpoint().name
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and int(rows[0]["timesteps"]) > 0
    assert 0.0 <= float(rows[0]["success_rate"]) <= 1.0
    with open(tmp_path / "rounds.csv") as f:
        (logged,) = csv.DictReader(f)
    assert float(logged["train_loss"]) >= 0.0 and logged["validation_loss"] == ""

    def collect_again(*args, **kwargs):
        raise AssertionError("a finished round was collected again")

    monkeypatch.setattr("residual_bench.finetune.dagger.collect_corrections", collect_again)
    assert finetune_dagger(tmp_path, **options) == final


def test_a_step_budget_runs_rounds_until_that_many_environment_steps_are_used(
    tmp_path, corrections, monkeypatch
):
    data, summary = corrections
    trained_on = []

    def collect(*args, **kwargs):
        return data, summary

    def train(frames, out, **kwargs):
        trained_on.append(len(frames["episode"]))
        out.write_bytes(b"network")

    monkeypatch.setattr("residual_bench.finetune.dagger.collect_corrections", collect)
    monkeypatch.setattr("residual_bench.finetune.dagger.train_bc", train)
    monkeypatch.setattr("residual_bench.finetune.dagger.evaluate_bc", lambda *a: 0.0)
    monkeypatch.setattr("residual_bench.finetune.dagger.action_loss", lambda *a: 0.0)
    n = summary["env_steps"]
    dagger = DaggerConfig(
        rounds=1, train_frames=n, suites=["drop"], demonstration_episodes=0, validation_episodes=0
    )
    finetune_dagger(tmp_path, dagger, DaggerTrainConfig(steps=2 * n + 1), progress=False)
    with open(tmp_path / "progress.csv") as f:
        assert [int(row["timesteps"]) for row in csv.DictReader(f)] == [n, 2 * n, 3 * n]
    # The aggregate grew to 3 episodes; each round trained on one whole episode of it.
    assert trained_on == [n, n, n]


def _fake_rounds(monkeypatch, corrections, evaluated, rates=None):
    """Collection returns ``corrections``, training writes a stand-in network naming its
    round, evaluation records the network it was asked about and returns ``rates`` in turn
    (0 without), the losses are 0."""
    data, summary = corrections
    monkeypatch.setattr(
        "residual_bench.finetune.dagger.collect_corrections", lambda *a: (data, summary)
    )
    monkeypatch.setattr(
        "residual_bench.finetune.dagger.train_bc",
        lambda f, out, **k: out.write_bytes(out.name.encode()),
    )
    monkeypatch.setattr("residual_bench.finetune.dagger.action_loss", lambda *a: 0.0)
    rates = list(rates or [])

    def evaluate(model, *args):
        evaluated.append(model.name)
        return rates.pop(0) if rates else 0.0

    monkeypatch.setattr("residual_bench.finetune.dagger.evaluate_bc", evaluate)


def _config(rounds, **fields):
    """Rounds on the fixture's one drop episode, without demonstrations or held-out episodes."""
    fields = {"demonstration_episodes": 0, "validation_episodes": 0, **fields}
    return DaggerConfig(rounds=rounds, suites=["drop"], **fields)


def test_a_round_file_cut_short_by_a_killed_run_is_collected_again_on_resume(
    tmp_path, corrections, monkeypatch
):
    evaluated = []
    _fake_rounds(monkeypatch, corrections, evaluated)
    (tmp_path / "round-0.npz").write_bytes(b"PK\x03\x04 cut short")
    with pytest.warns(UserWarning, match="round-0.npz is unreadable"):
        finetune_dagger(tmp_path, _config(1), progress=False)
    with np.load(tmp_path / "round-0.npz") as f:
        assert int(f["env_steps"]) == corrections[1]["env_steps"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_round_trained_but_not_yet_evaluated_gets_its_curve_point_on_resume(
    tmp_path, corrections, monkeypatch
):
    evaluated = []
    _fake_rounds(monkeypatch, corrections, evaluated)
    finetune_dagger(tmp_path, _config(2), progress=False)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    with open(tmp_path / "progress.csv", "w", newline="") as f:  # killed while evaluating round 1
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    with open(tmp_path / "rounds.csv") as f:
        logged = list(csv.DictReader(f))
    with open(tmp_path / "rounds.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(logged[0]))
        writer.writeheader()
        writer.writerow(logged[0])
    evaluated.clear()
    finetune_dagger(tmp_path, _config(2), progress=False)
    assert evaluated == ["round-1.pt"]
    with open(tmp_path / "progress.csv") as f:
        n = corrections[1]["env_steps"]
        assert [int(row["timesteps"]) for row in csv.DictReader(f)] == [n, 2 * n]


def test_the_final_network_is_the_round_with_the_highest_success_the_earlier_of_a_tie(
    tmp_path, corrections, monkeypatch
):
    _fake_rounds(monkeypatch, corrections, [], rates=[0.1, 0.3, 0.3, 0.2])
    final = finetune_dagger(tmp_path, _config(4), progress=False)
    assert final.read_bytes() == b"round-1.pt"
    with open(tmp_path / "rounds.csv") as f:
        logged = list(csv.DictReader(f))
    assert [float(row["success_rate"]) for row in logged] == [0.1, 0.3, 0.3, 0.2]
    assert [int(row["round"]) for row in logged] == [0, 1, 2, 3]


def _two_episode_round(corrections):
    data, summary = corrections
    twice = merge_frames(data, data)  # episodes 0 and 1
    return twice, {**summary, "episodes": 2, "env_steps": 2 * summary["env_steps"]}


def test_the_last_episodes_of_a_round_are_held_out_for_validation_never_trained_on(
    tmp_path, corrections, monkeypatch
):
    data, summary = _two_episode_round(corrections)
    trained, losses = [], []
    monkeypatch.setattr(
        "residual_bench.finetune.dagger.collect_corrections", lambda *a: (data, summary)
    )

    def train(frames, out, **kwargs):
        trained.append(len(frames["action"]))
        out.write_bytes(b"net")

    def loss(model, frames):
        losses.append((str(model), len(frames["action"])))
        return 0.5

    monkeypatch.setattr("residual_bench.finetune.dagger.train_bc", train)
    monkeypatch.setattr("residual_bench.finetune.dagger.evaluate_bc", lambda *a: 0.0)
    monkeypatch.setattr("residual_bench.finetune.dagger.action_loss", loss)
    config = _config(1, episodes_per_round=2, validation_episodes=1)
    finetune_dagger(tmp_path, config, progress=False)
    n = len(corrections[0]["action"])
    assert trained == [n]  # episode 0 only
    assert [frames for _, frames in losses] == [n, n, n]  # train; validation after, before
    with open(tmp_path / "rounds.csv") as f:
        (row,) = csv.DictReader(f)
    assert int(row["train_frames"]) == n and int(row["validation_frames"]) == n
    held = validation_frames([tmp_path / "round-0.npz"], 1)
    np.testing.assert_array_equal(held["action_chunk"], corrections[0]["action_chunk"])


def test_a_round_that_would_hold_out_all_its_episodes_is_refused_naming_the_fields(tmp_path):
    config = DaggerConfig(episodes_per_round=5, validation_episodes=5)
    with pytest.raises(
        ValueError, match=r"validation_episodes \(5\) must be below dagger.episodes_per_round"
    ):
        finetune_dagger(tmp_path, config, progress=False)


def test_the_demonstrations_are_recorded_once_and_kept_with_their_chunk_targets(
    tmp_path, monkeypatch
):
    config = DaggerConfig(demonstration_episodes=1)
    (demos,) = kept_demonstrations(tmp_path, config, 4, progress=False)
    assert (tmp_path / "demonstrations.npz").exists()
    np.testing.assert_array_equal(
        demos["action_chunk"], chunk_targets(demos["action"], demos["episode"], 4)
    )

    def collect_again(*args, **kwargs):
        raise AssertionError("the demonstrations were recorded again")

    monkeypatch.setattr("residual_bench.finetune.dagger.collect_demonstrations", collect_again)
    (again,) = kept_demonstrations(tmp_path, config, 4, progress=False)
    np.testing.assert_array_equal(again["action"], demos["action"])
    assert kept_demonstrations(tmp_path, DaggerConfig(demonstration_episodes=0), 4) == []


def test_a_frame_with_its_own_label_chunk_trains_on_it_not_on_the_next_frames(corrections):
    data = corrections[0]
    np.testing.assert_array_equal(frame_targets(data, 4), data["action_chunk"])
    demos = {k: v for k, v in data.items() if k != "action_chunk"}
    np.testing.assert_array_equal(
        frame_targets(demos, 4), chunk_targets(data["action"], data["episode"], 4)
    )
    with pytest.raises(ValueError, match="action_chunk: expected shape"):
        frame_targets(data, 3)


def test_a_round_labelled_per_step_before_issue_29_is_refused(tmp_path, corrections):
    old = {k: v for k, v in corrections[0].items() if k != "action_chunk"}
    np.savez(tmp_path / "round-0.npz", env_steps=10, successes=0, **old)
    with pytest.raises(ValueError, match="per-step labels"):
        finetune_dagger(tmp_path, _config(1), progress=False)


def test_a_capped_round_trains_on_whole_episodes_drawn_from_every_round(tmp_path):
    rounds = []
    for r, lengths in enumerate(([5, 3], [4, 6])):
        episode = np.repeat(np.arange(len(lengths)), lengths)
        arrays = {k: np.zeros((len(episode), 1)) for k in FRAME_ARRAYS}
        arrays["episode"] = episode
        arrays["action"] = np.arange(len(episode)) + 100 * r  # which round, which frame
        np.savez(tmp_path / f"round-{r}.npz", **arrays)
        rounds.append(tmp_path / f"round-{r}.npz")
    sample = sample_episodes(rounds, 9, np.random.default_rng(0))
    assert 1 <= len(sample["action"]) <= 9
    for episode in np.unique(sample["episode"]):  # every drawn episode is whole and in order
        actions = sample["action"][sample["episode"] == episode]
        np.testing.assert_array_equal(actions, np.arange(actions[0], actions[0] + len(actions)))
        assert len(actions) in (5, 3, 4, 6)
    everything = sample_episodes(rounds, 18, np.random.default_rng(0))
    assert sorted(everything["action"].tolist()) == [*range(8), *range(100, 110)]


def test_the_shipped_fine_tuning_config_is_not_a_residual_config():
    config = load_finetune_config("finetune-dagger")
    assert config.method == "dagger" and config.applies_to == ["bc"]
    assert "finetune-dagger" not in config_names()


@pytest.mark.parametrize(
    "text, message",
    [
        ("method: dagger\nsteps: 3\n", "unknown field"),
        ("method: lora\n", "method must be one of"),
        ("method: dagger\ndagger: {rounds: 0}\n", "dagger.rounds"),
        ("method: dagger\ndagger: {round: 2}\n", "dagger.round"),
        ("method: dagger\ndagger: {lr: -1}\n", "dagger.lr"),
        ("method: dagger\ndagger: {lr: 3e-4}\n", r"dagger.lr .*write 1.0e-5"),
        ("method: dagger\napplies_to: bc\n", "applies_to"),
        ("method: dagger\ndagger: {train_frames: 0}\n", "dagger.train_frames"),
        ("method: dagger\ntrain: {steps: 1.5}\n", "train.steps"),
    ],
    ids=[
        "unknown-field",
        "unknown-method",
        "zero-rounds",
        "misspelt",
        "negative-lr",
        "exponent-read-as-text",
        "not-list",
        "zero-frames",
        "fractional-steps",
    ],  # fmt: skip
)
def test_a_malformed_fine_tuning_config_names_the_field(tmp_path, text, message):
    path = tmp_path / "ft.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_finetune_config(path)


def test_fine_tuning_a_base_without_weights_is_refused_with_what_to_do_instead(capsys):
    config = load_finetune_config("finetune-dagger")
    with pytest.raises(ValueError, match="does not apply to 'scripted'.*residual"):
        check_applies(config, "scripted")
    check_applies(config, "bc:some/checkpoint.pt")  # a bc network from elsewhere is fine
    code = main(["train", "--base", "scripted", "--residual", "finetune-dagger", "--out", "x"])
    assert code != 0 and "does not apply to 'scripted'" in capsys.readouterr().err


def test_residual_only_options_are_refused_for_fine_tuning(capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--base", "bc", "--residual", "finetune-dagger", "--out", str(out)]
    assert main([*argv, "--suite", "poke"]) != 0
    error = capsys.readouterr().err
    assert "--suite applies to residuals and RL fine-tuning only" in error
    assert not out.exists(), "a refused run must not leave a run directory behind"


def test_a_bc_checkpoint_is_a_base_by_path(tmp_path):
    entry = get_base(f"bc:{shipped_checkpoint()}")
    assert entry.env_kwargs == {"obs_mode": "rgb", "image_size": 84}
    with pytest.raises(ValueError, match="does not exist"):
        get_base(f"bc:{tmp_path / 'missing.pt'}")
