"""In-episode perturbations: when they fire, what they report and what they do.

Each event is reported once, in ``info["new_events"]`` of the step during which it fired, as
a JSON-serialisable dict. Everything random about an episode's events is drawn at reset from
the episode's seed (after the scene, so a suite never changes the scene a seed gives); what
the events then do to the object, the gripper or the base policy is measurable.
"""

import json

import numpy as np
import pytest

from residual_bench.policies.expert import ScriptedExpert
from residual_bench.rollout import run_episodes

SHORT = {"task": {"episode_seconds": 4.0}}
DT = 0.05  # control period at the default 20 Hz
EVENT_KEYS = {"type", "trigger", "time", "magnitude", "target", "duration", "params"}
ZERO = np.zeros(7, dtype=np.float32)


def one_entry(**entry) -> dict:
    """A suite dict with the single perturbation entry ``entry``."""
    return {"name": "test", "perturbations": [entry]}


def play(env, seed: int, policy: str = "zero", steps: int | None = None):
    """Play an episode with zero actions or the closed-loop expert.

    Returns the reset info followed by each step's info (``infos[k]`` is the info after
    step ``k``) and the target object's centre at the same instants.
    """
    sim = env.unwrapped
    _, info = env.reset(seed=seed)
    expert = ScriptedExpert()
    expert.reset()
    infos, centres = [info], [sim.object_states[0].center.copy()]
    while True:
        action = expert.act(env) if policy == "expert" else ZERO
        _, _, terminated, truncated, info = env.step(action)
        infos.append(info)
        centres.append(sim.object_states[0].center.copy())
        if terminated or truncated or (steps is not None and len(infos) > steps):
            return infos, np.array(centres)


def event_steps(infos) -> list[int]:
    """Indices ``k`` of the infos that report at least one new event."""
    return [k for k, info in enumerate(infos) if info["new_events"]]


def all_events(infos) -> list[dict]:
    return [event for info in infos for event in info["new_events"]]


# -- when events fire and what they report ------------------------------------------------


@pytest.mark.parametrize("kind", ["poke", "slide", "drop", "latency"])
def test_time_triggered_event_is_reported_once_in_the_step_starting_at_its_time(make_env, kind):
    env = make_env(suite=one_entry(type=kind, trigger={"time": [0.5, 0.5]}), scene_overrides=SHORT)
    infos, _ = play(env, seed=0, steps=20)
    assert infos[0]["new_events"] == []
    (k,) = event_steps(infos)
    (event,) = infos[k]["new_events"]
    assert infos[k - 1]["time"] == pytest.approx(0.5)  # the step that starts at 0.5 s
    assert infos[k - 1]["time"] - 1e-9 <= event["time"] <= infos[k]["time"] + 1e-9
    assert event["time"] == pytest.approx(0.5)
    assert event["type"] == kind
    assert event["trigger"] == "time"


@pytest.mark.parametrize("kind", ["poke", "slide", "drop", "latency"])
def test_event_record_has_the_documented_fields_and_is_json_serialisable(make_env, kind):
    env = make_env(suite=one_entry(type=kind, trigger={"time": [0.1, 0.1]}), scene_overrides=SHORT)
    infos, _ = play(env, seed=1, steps=5)
    (event,) = all_events(infos)
    assert set(event) == EVENT_KEYS
    assert json.loads(json.dumps(event)) == event  # plain JSON values only
    assert isinstance(event["params"], dict)
    assert event["magnitude"] > 0
    assert event["duration"] >= 0
    expected_target = "base_policy" if kind == "latency" else "object_0"
    assert event["target"] == expected_target


def test_time_window_and_delay_place_the_event_inside_them(make_env):
    suite = one_entry(type="poke", trigger={"time": [0.3, 0.6]}, delay=[0.2, 0.4])
    env = make_env(suite=suite, scene_overrides=SHORT)
    times = []
    for seed in range(6):
        infos, _ = play(env, seed=seed, steps=25)
        (event,) = all_events(infos)
        times.append(event["time"])
    assert all(0.5 - 1e-9 <= t <= 1.0 + DT for t in times), times
    assert len(set(times)) > 1, "the firing time is drawn per episode"


def test_count_and_gap_give_several_events_gap_seconds_apart(make_env):
    suite = one_entry(type="latency", trigger={"time": [0.2, 0.2]}, count=[3, 3], gap=0.5)
    env = make_env(suite=suite, scene_overrides=SHORT)
    infos, _ = play(env, seed=0, steps=40)
    times = [event["time"] for event in all_events(infos)]
    assert times == pytest.approx([0.2, 0.7, 1.2])


@pytest.mark.parametrize("probability, expected", [(0.0, 0), (1.0, 1)])
def test_probability_zero_never_fires_and_one_always_fires(make_env, probability, expected):
    suite = one_entry(type="poke", trigger={"time": [0.1, 0.1]}, probability=probability)
    env = make_env(suite=suite, scene_overrides=SHORT)
    for seed in range(3):
        infos, _ = play(env, seed=seed, steps=5)
        assert len(all_events(infos)) == expected


def test_nominal_suite_reports_no_events(make_env):
    infos, _ = play(make_env(scene_overrides=SHORT), seed=0)
    assert all_events(infos) == []


def test_phase_triggered_poke_fires_only_once_the_phase_was_reported(make_env):
    env = make_env(suite=one_entry(type="poke", trigger={"phase": "grasp"}), scene_overrides=SHORT)
    for seed in range(2):
        infos, _ = play(env, seed=seed, policy="expert")
        phases = [info["phase"] for info in infos]
        assert "grasp" in phases
        first_grasp = phases.index("grasp")
        (k,) = event_steps(infos)
        (event,) = infos[k]["new_events"]
        assert event["trigger"] == "phase:grasp"
        assert k > first_grasp, "fired before the grasp phase was reported"
        # no delay: it fires in the step right after the phase is first reported
        assert k == first_grasp + 1
        assert event["time"] == pytest.approx(infos[first_grasp]["time"])


def test_phase_trigger_delay_counts_from_the_start_of_the_phase(make_env):
    suite = one_entry(type="latency", trigger={"phase": "grasp"}, delay=[0.3, 0.3])
    env = make_env(suite=suite, scene_overrides=SHORT)
    infos, _ = play(env, seed=0, policy="expert")
    phases = [info["phase"] for info in infos]
    phase_start = infos[phases.index("grasp")]["time"]
    (event,) = all_events(infos)
    assert event["trigger"] == "phase:grasp"
    assert phase_start + 0.3 - 1e-9 <= event["time"] < phase_start + 0.3 + DT


def test_event_for_a_phase_that_never_comes_does_not_fire(make_env):
    # zero actions never bring the gripper near the object
    env = make_env(suite=one_entry(type="poke", trigger={"phase": "grasp"}), scene_overrides=SHORT)
    infos, _ = play(env, seed=0)
    assert {info["phase"] for info in infos} == {"approach"}
    assert all_events(infos) == []


# -- determinism -----------------------------------------------------------------------


def expert_run(env, seed: int) -> tuple[str, str]:
    """The events (as JSON text) and the final state hash of an expert episode."""
    infos, _ = play(env, seed=seed, policy="expert")
    return json.dumps(all_events(infos)), env.unwrapped.state_hash()


def test_same_seed_gives_identical_events_and_state_under_the_mixed_suite(make_env):
    kwargs = {"suite": "mixed", "scene_overrides": {"task": {"episode_seconds": 5.0}}}
    env, fresh = make_env(**kwargs), make_env(**kwargs)
    first = expert_run(env, seed=5)
    assert json.loads(first[0]), "seed 5 of the mixed suite should perturb the episode"
    expert_run(env, seed=6)  # something else in between
    assert expert_run(env, seed=5) == first
    assert expert_run(fresh, seed=5) == first


def test_different_seeds_give_different_events(make_env):
    env = make_env(suite="mixed", scene_overrides=SHORT)
    runs = [expert_run(env, seed=seed)[0] for seed in range(4)]
    assert all(json.loads(events) for events in runs), "every one of these seeds is perturbed"
    assert len(set(runs)) == 4


@pytest.mark.parametrize("suite", ["poke", "mixed-hard"])
def test_adding_a_suite_does_not_change_the_scene_a_seed_draws(make_env, suite):
    plain, perturbed = make_env(suite=None), make_env(suite=suite)
    for seed in (0, 7):
        _, a = plain.reset(seed=seed)
        _, b = perturbed.reset(seed=seed)
        for key in ("objects", "instruction", "target_object", "scene_spec_hash"):
            assert a[key] == b[key], key
        states = zip(plain.unwrapped.object_states, perturbed.unwrapped.object_states, strict=True)
        for sa, sb in states:
            np.testing.assert_array_equal(sa.center, sb.center)
            np.testing.assert_array_equal(sa.orientation, sb.orientation)
        np.testing.assert_array_equal(plain.unwrapped.task.goal, perturbed.unwrapped.task.goal)


def test_adding_a_suite_does_not_change_the_images_before_the_first_event(make_env):
    kwargs = {"obs_mode": "rgb", "image_size": 32}
    plain, perturbed = make_env(**kwargs), make_env(suite="poke", **kwargs)
    obs_a, _ = plain.reset(seed=3)
    obs_b, _ = perturbed.reset(seed=3)
    np.testing.assert_array_equal(obs_a["rgb"], obs_b["rgb"])


# -- effects -----------------------------------------------------------------------------


def horizontal_shift(centres, start: int, end: int) -> float:
    return float(np.linalg.norm(centres[end, :2] - centres[start, :2]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poke_moves_the_resting_object_that_otherwise_stays_put(make_env, seed):
    poke = one_entry(type="poke", trigger={"time": [0.2, 0.2]}, speed=[0.5, 0.5])
    infos, centres = play(make_env(suite=poke, scene_overrides=SHORT), seed=seed, steps=14)
    (k,) = event_steps(infos)
    (event,) = infos[k]["new_events"]
    assert event["magnitude"] == pytest.approx(0.5)
    assert event["params"]["force"] > 0
    moved = float(np.linalg.norm(centres[k + 9] - centres[k - 1]))  # within 0.5 s
    assert moved > 0.005

    _, still = play(make_env(scene_overrides=SHORT), seed=seed, steps=14)
    assert float(np.linalg.norm(still[k + 9] - still[k - 1])) < 0.002


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slide_displace_moves_the_object_by_the_distance_at_once(make_env, seed):
    suite = one_entry(type="slide", trigger={"time": [0.5, 0.5]}, distance=[0.05, 0.05])
    infos, centres = play(make_env(suite=suite, scene_overrides=SHORT), seed=seed, steps=12)
    (k,) = event_steps(infos)
    (event,) = infos[k]["new_events"]
    # the reported magnitude is the displacement, at most the sampled distance
    assert event["magnitude"] <= event["params"]["distance"] + 1e-9
    assert event["magnitude"] == pytest.approx(0.05, abs=1e-6)  # room enough in these scenes
    assert horizontal_shift(centres, k - 1, k) == pytest.approx(event["magnitude"], abs=0.003)
    assert abs(centres[k, 2] - centres[k - 1, 2]) < 0.005  # sideways, on the table


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_shortened_slide_records_the_distance_it_applied_beside_the_one_drawn(make_env, seed):
    suite = one_entry(type="slide", trigger={"time": [0.5, 0.5]}, distance=[0.25, 0.25])
    infos, centres = play(make_env(suite=suite, scene_overrides=SHORT), seed=seed, steps=12)
    (k,) = event_steps(infos)
    (event,) = infos[k]["new_events"]
    params = event["params"]
    assert params["distance"] == 0.25
    assert params["applied_distance"] == event["magnitude"] < 0.25  # the table region ends
    assert horizontal_shift(centres, k - 1, k) == pytest.approx(
        params["applied_distance"], abs=0.003
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_slide_kick_sends_the_object_sliding(make_env, seed):
    suite = one_entry(type="slide", mode="kick", trigger={"time": [0.2, 0.2]}, speed=[0.5, 0.5])
    infos, centres = play(make_env(suite=suite, scene_overrides=SHORT), seed=seed, steps=14)
    (k,) = event_steps(infos)
    assert infos[k]["new_events"][0]["magnitude"] == pytest.approx(0.5)
    assert infos[k]["object_speed"] > 0.1
    assert horizontal_shift(centres, k - 1, k + 9) > 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_drop_release_makes_the_expert_lose_the_object_it_carries(make_env, seed):
    suite = one_entry(
        type="drop", trigger={"phase": "transport"}, delay=[0.2, 0.2], duration=[0.3, 0.3]
    )
    infos, _ = play(make_env(suite=suite, scene_overrides=SHORT), seed=seed, policy="expert")
    (k,) = event_steps(infos)
    (event,) = infos[k]["new_events"]
    assert event["trigger"] == "phase:transport"
    assert event["duration"] == pytest.approx(0.3, abs=1 / 240)
    assert infos[k - 1]["is_grasped"], "the object was carried when the gripper opened"
    assert not all(info["is_grasped"] for info in infos[k : k + 5]), "still held 0.25 s later"


@pytest.mark.parametrize("seed", [0, 1])
def test_drop_from_height_lifts_the_object_and_it_lands_again(make_env, seed):
    suite = one_entry(
        type="drop", mode="from_height", trigger={"time": [0.5, 0.5]}, height=[0.1, 0.1]
    )
    infos, centres = play(make_env(suite=suite, scene_overrides=SHORT), seed=seed, steps=40)
    (k,) = event_steps(infos)
    assert infos[k - 1]["object_height"] < 0.01
    assert centres[k, 2] - centres[k - 1, 2] > 0.05  # still falling at the end of the step
    assert horizontal_shift(centres, k - 1, k) > 0.02  # and moved sideways by `shift`
    landed = infos[k + 20]  # 1 s later
    assert landed["object_height"] < 0.03
    assert landed["object_speed"] < 0.05


@pytest.mark.parametrize("duration", [0.5, 0.8])
def test_latency_marks_the_base_stalled_for_its_duration(make_env, duration):
    suite = one_entry(type="latency", trigger={"time": [0.5, 0.5]}, duration=[duration] * 2)
    infos, _ = play(make_env(suite=suite, scene_overrides=SHORT), seed=0, steps=40)
    (k,) = event_steps(infos)
    (event,) = infos[k]["new_events"]
    assert event["duration"] == pytest.approx(duration)
    stalled = [info["base_stalled"] for info in infos]
    assert not any(stalled[:k]), "stalled before the event"
    # one contiguous window starting at the event's step...
    ones = [i for i, s in enumerate(stalled) if s]
    assert ones == list(range(k, ones[-1] + 1))
    # ...that lasts the duration (info says whether the *next* step is stalled)
    assert duration - DT - 1e-9 <= len(ones) * DT <= duration + 1e-9
    assert not stalled[ones[-1] + 1]
    assert infos[ones[-1] + 1]["time"] == pytest.approx(event["time"] + duration, abs=DT)


def test_latency_does_not_touch_the_scene(make_env):
    suite = one_entry(type="latency", trigger={"time": [0.1, 0.1]}, duration=[1.0, 1.0])
    _, a = play(make_env(suite=suite, scene_overrides=SHORT), seed=0, steps=30)
    _, b = play(make_env(scene_overrides=SHORT), seed=0, steps=30)
    np.testing.assert_array_equal(a, b)


def test_faults_active_at_the_end_of_an_episode_do_not_leak_into_the_next(make_env):
    ends_mid_fault = {
        "name": "faults",
        "perturbations": [
            {"type": "latency", "trigger": {"time": [0.6, 0.6]}, "duration": [2.0, 2.0]},
            {"type": "drop", "trigger": {"time": [0.7, 0.7]}, "duration": [2.0, 2.0]},
            {"type": "poke", "trigger": {"time": [0.9, 0.9]}, "duration": [0.5, 0.5]},
        ],
    }
    kwargs = {"suite": ends_mid_fault, "scene_overrides": {"task": {"episode_seconds": 1.0}}}
    used, fresh = make_env(**kwargs), make_env(**kwargs)
    infos, _ = play(used, seed=0)
    assert infos[-1]["base_stalled"] and used.unwrapped.robot.gripper_forced_open
    a_infos, a = play(used, seed=1, steps=10)
    b_infos, b = play(fresh, seed=1, steps=10)
    np.testing.assert_array_equal(a, b)
    assert used.unwrapped.state_hash() == fresh.unwrapped.state_hash()
    assert not any(info["base_stalled"] for info in a_infos)


def test_a_slide_never_solves_the_task_for_a_policy_that_does_nothing(make_env):
    env = make_env(suite="slide-hard", scene_overrides={"task": {"episode_seconds": 3.0}})
    infos, _ = play(env, seed=61)
    assert all_events(infos), "the slide fired"
    assert not any(info["success"] for info in infos)


# -- suites hurt a policy that does not react --------------------------------------------


def test_slide_suite_hurts_the_open_loop_expert_but_not_the_closed_loop_one():
    kwargs = {
        "progress": False,
        "env_kwargs": {"scene_overrides": {"task": {"episode_seconds": 6.0}}},
    }
    _, nominal = run_episodes(8, policy="expert-open-loop", suite="nominal", **kwargs)
    _, slide = run_episodes(8, policy="expert-open-loop", suite="slide", **kwargs)
    _, closed = run_episodes(8, policy="expert", suite="slide", **kwargs)
    assert slide["n_events"] >= 8
    assert slide["success_rate"]["k"] < nominal["success_rate"]["k"]
    assert closed["success_rate"]["k"] > slide["success_rate"]["k"]
