"""The chunk executor: a slow, chunked base run at the control rate in simulated time.

The fake base encodes where each action came from, so every test can read it back from the
env action: x = 0.1 * call index + 0.01 * row, y = the observation's time, gripper = -1. Its
spec's units make the conversion the identity (env unit = native unit).
"""

import math

import numpy as np
import pytest

from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.convert import ActionConverter
from residual_bench.policies.executor import ChunkExecutor, LatencyModel
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE

ENV_DT = 0.05  # 20 Hz
STILL_OPEN = [0, 0, 0, 0, 0, 0, 1]


class CountingPolicy:
    def __init__(self, control_hz: float = 20.0, chunk_len: int = 4, noise: float = 0.0) -> None:
        fraction = ENV_DT * control_hz  # undo the converter's time rescaling
        self.spec = PolicySpec(
            name="counting",
            control_hz=control_hz,
            chunk_len=chunk_len,
            action_dim=7,
            action_repr="delta_ee_euler",
            gripper="absolute_pm1",
            position_unit_m=POSITION_SCALE / fraction,
            rotation_unit_rad=ROTATION_SCALE / fraction,
            cameras={},
            needs_instruction=False,
            needs_state=True,
            normalization_key=None,
        )
        self.noise = noise
        self.calls = 0

    def reset(self, instruction: str, seed: int | None) -> None:
        self.calls = 0
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict, instruction: str) -> ActionChunk:
        a = np.zeros((self.spec.chunk_len, 7), dtype=np.float32)
        a[:, 0] = 0.1 * self.calls + 0.01 * np.arange(self.spec.chunk_len)
        a[:, 1] = obs["t"]
        a[:, 2] = self.noise * self.rng.uniform(-1, 1, self.spec.chunk_len)
        a[:, 6] = -1.0
        self.calls += 1
        return ActionChunk(a, {"infer_time_s": 0.123})


def run(executor, n_steps, seed=0, stalled=()):
    """Step the executor like a rollout would; return actions (n, 7) and the infos."""
    executor.reset("pick", seed)
    actions, infos = [], []
    for n in range(n_steps):
        t = n * ENV_DT
        a, info = executor.step({"t": np.float32(t)}, t, stalled=n in stalled)
        actions.append(a)
        infos.append(info)
    return np.array(actions), infos


def source(action):
    """(call index, row) an action came from."""
    x = round(action[0] * 100)
    return x // 10, x % 10


def test_hold_plays_each_native_action_for_its_env_steps_and_replans_when_the_chunk_ends():
    # Base at 5 Hz, env at 20 Hz: each native action lasts 4 env steps; a chunk of 3 lasts 12.
    ex = ChunkExecutor(CountingPolicy(control_hz=5.0, chunk_len=3), ENV_DT, mode="hold")
    assert ex.steps_per_action == 4 and ex.replan_every == 3
    actions, infos = run(ex, 26)
    assert [source(a) for a in actions] == [(n // 12, (n % 12) // 4) for n in range(26)]
    assert [i["base_calls"] for i in infos] == [1] * 12 + [2] * 12 + [3] * 2
    assert [n for n, i in enumerate(infos) if i["base_fresh"]] == [0, 12, 24]
    assert not any(i["base_held"] for i in infos)
    assert infos[0]["base_infer_time_s"] == 0.123 and infos[1]["base_infer_time_s"] is None


def test_hold_finishes_a_chunk_before_starting_a_newer_one_from_its_first_row():
    ex = ChunkExecutor(CountingPolicy(chunk_len=4), ENV_DT, mode="hold", replan_every=2)
    actions, infos = run(ex, 6)
    # Call 1 arrives at step 2 but waits; call 2, newer, replaces it and starts at step 4.
    assert [source(a) for a in actions] == [(0, 0), (0, 1), (0, 2), (0, 3), (2, 0), (2, 1)]
    assert [i["base_fresh"] for i in infos] == [True, False, True, False, True, False]


def test_receding_switches_to_the_new_chunk_from_its_start_when_it_arrives():
    # 5 Hz base, requests every base period (4 env steps), answers 2 env steps late.
    latency = LatencyModel(fixed_s=0.1)
    ex = ChunkExecutor(
        CountingPolicy(control_hz=5.0), ENV_DT, mode="receding", latency=latency, align="arrival"
    )
    actions, infos = run(ex, 12)
    assert [source(a) for a in actions[2:]] == [(0, 0)] * 4 + [(1, 0)] * 4 + [(2, 0)] * 2
    assert [n for n, i in enumerate(infos) if i["base_fresh"]] == [2, 6, 10]
    assert [i["base_calls"] for i in infos[:6]] == [1, 1, 1, 1, 2, 2]  # request due every 4


def test_fixed_latency_holds_still_and_open_then_acts_on_the_stale_observation():
    ex = ChunkExecutor(
        CountingPolicy(), ENV_DT, latency=LatencyModel(fixed_s=0.15), align="arrival"
    )
    actions, infos = run(ex, 8)
    np.testing.assert_array_equal(actions[:3], [STILL_OPEN] * 3)
    assert [i["base_held"] for i in infos[:4]] == [True, True, True, False]
    assert infos[3]["base_fresh"] and source(actions[3]) == (0, 0)
    # The answer arriving at 0.15 s was computed from the observation at 0 s.
    assert actions[3, 1] == 0.0 and infos[3]["base_action_age_s"] == pytest.approx(0.15)
    # One request in flight at a time: the next goes out on arrival and reflects t = 0.15 s.
    assert infos[2]["base_calls"] == 1 and infos[3]["base_calls"] == 2
    assert source(actions[6]) == (1, 0) and actions[6, 1] == pytest.approx(0.15)
    # Between arrivals the receding chunk keeps playing (no hold).
    assert [source(a) for a in actions[3:6]] == [(0, 0), (0, 1), (0, 2)]


def test_a_late_chunk_aligned_to_its_observation_skips_the_rows_whose_time_has_passed():
    # 5 Hz base, chunks of 4 rows of 4 env steps, answers 6 env steps (0.3 s) late.
    latency = LatencyModel(fixed_s=0.3)
    ex = ChunkExecutor(CountingPolicy(control_hz=5.0), ENV_DT, latency=latency)
    actions, infos = run(ex, 12)
    assert [i["base_held"] for i in infos[:6]] == [True] * 6
    # Arriving at step 6, call 0's rows belong to steps 0-3, 4-7, 8-11, ...: row 1 is due.
    assert infos[6]["base_fresh"] and [source(a) for a in actions[6:8]] == [(0, 1)] * 2
    # The next request went out at step 6 (one in flight at a time): it arrives at step 12;
    # meanwhile call 0 plays on through its own timeline.
    assert [source(a) for a in actions[8:12]] == [(0, 2)] * 4


def test_a_chunk_that_arrives_after_its_last_row_leaves_the_last_action_held():
    latency = LatencyModel(fixed_s=0.25)  # 5 env steps; chunks of 2 rows x 1 step
    ex = ChunkExecutor(CountingPolicy(chunk_len=2), ENV_DT, latency=latency)
    actions, infos = run(ex, 7)
    assert all(i["base_held"] for i in infos[:7])
    np.testing.assert_array_equal(actions[:7], [STILL_OPEN] * 7)


def test_ensemble_averages_overlapping_predictions_with_more_weight_on_older_ones():
    ex = ChunkExecutor(CountingPolicy(chunk_len=3), ENV_DT, mode="ensemble", ensemble_decay=0.5)
    actions, _ = run(ex, 4)
    w1, w2 = math.exp(-0.5), math.exp(-1.0)
    assert actions[0, 0] == pytest.approx(0.0)  # one chunk: call 0, row 0
    assert actions[1, 0] == pytest.approx((0.01 + w1 * 0.10) / (1 + w1))
    # Step 2: call 0 row 2 (0.02, oldest, weight 1), call 1 row 1 (0.11), call 2 row 0 (0.20).
    assert actions[2, 0] == pytest.approx((0.02 + w1 * 0.11 + w2 * 0.20) / (1 + w1 + w2))
    assert actions[2, 0] == pytest.approx(0.081185, abs=1e-6)  # below the plain mean 0.11
    # Call 0 has run out at step 3: only calls 1, 2, 3 contribute.
    assert actions[3, 0] == pytest.approx((0.12 + w1 * 0.21 + w2 * 0.30) / (1 + w1 + w2))


def test_a_stall_holds_the_last_action_sends_nothing_and_delivers_late_answers_after():
    # Requests every step, answered 2 steps later; the base stalls on steps 5-8.
    ex = ChunkExecutor(CountingPolicy(), ENV_DT, latency=LatencyModel(fixed_s=0.1), align="arrival")
    actions, infos = run(ex, 11, stalled=range(5, 9))
    for n in range(5, 9):
        np.testing.assert_array_equal(actions[n], actions[4])
        assert infos[n]["base_held"] and not infos[n]["base_fresh"]
        assert infos[n]["base_calls"] == infos[4]["base_calls"] == 3  # sent at 0, 2 and 4
    # The answer to the request of step 4, due at step 6, arrives when the stall ends.
    assert infos[9]["base_fresh"] and not infos[9]["base_held"]
    assert source(actions[9]) == (2, 0) and actions[9, 1] == pytest.approx(0.2)
    assert infos[9]["base_action_age_s"] == pytest.approx(0.25)
    assert infos[9]["base_calls"] == 4  # and a new request goes out at once
    assert infos[8]["base_action_age_s"] == pytest.approx(0.4 - 0.1)  # age keeps growing


def test_jitter_is_drawn_from_the_seed():
    def arrivals(seed):
        ex = ChunkExecutor(CountingPolicy(), ENV_DT, latency=LatencyModel(0.05, 0.3))
        _, infos = run(ex, 80, seed=seed)
        return [n for n, i in enumerate(infos) if i["base_fresh"]]

    assert arrivals(1) == arrivals(1)
    assert arrivals(1) != arrivals(2)


@pytest.mark.parametrize("mode", ["hold", "receding", "ensemble"])
def test_same_seed_gives_the_same_actions_end_to_end(mode):
    def actions(seed):
        policy = CountingPolicy(control_hz=10.0, noise=0.5)
        ex = ChunkExecutor(policy, ENV_DT, mode=mode, latency=LatencyModel(0.05, 0.2))
        return run(ex, 60, seed=seed, stalled=range(20, 27))[0]

    np.testing.assert_array_equal(actions(3), actions(3))
    assert not np.array_equal(actions(3), actions(4))


def test_the_default_converter_follows_the_env_rate():
    policy = CountingPolicy(control_hz=5.0)
    a, _ = run(ChunkExecutor(policy, ENV_DT), 1)
    b, _ = run(
        ChunkExecutor(policy, ENV_DT, converter=ActionConverter(policy.spec, env_dt=0.05)), 1
    )
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        (dict(env_dt=0.03), "whole number of env steps"),  # 6.67 steps per base period
        (dict(mode="chunked"), "mode"),
        (dict(replan_every=0), "replan_every"),
        (dict(ensemble_decay=math.nan), "ensemble_decay"),
        (dict(converter="identity"), "converter"),
    ],
)
def test_invalid_executor_arguments_are_named(kwargs, problem):
    policy = CountingPolicy(control_hz=5.0)
    if kwargs.get("converter") == "identity":
        kwargs["converter"] = ActionConverter(policy.spec, env_dt=0.02)
    with pytest.raises(ValueError, match=problem):
        ChunkExecutor(policy, **{"env_dt": ENV_DT, **kwargs})


def test_latency_model_rejects_negative_delays():
    with pytest.raises(ValueError, match="jitter_s"):
        LatencyModel(0.1, -0.01)
