"""DAgger's labels: the chunk the privileged expert would record from each state the learned
base visits.

The expert runs in the learned policy's shadow. It is a phase machine, so its phase is first
brought in line with the state the learned policy produced (:func:`sync_phase`): an object the
learned policy grasped on its own is carried to the plate, not released and approached again.
Each visited state is then labelled with :func:`expert_chunk`, the chunk a demonstration of
the expert would have recorded from there (results/finetune/dagger-labels.md).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from residual_bench.config_fields import field_default
from residual_bench.episodes.loop import run_episode
from residual_bench.finetune.config import DaggerConfig
from residual_bench.policies.bc.data import (
    ARRAYS,
    IMAGE_SIZE,
    collection_done,
    demonstration_expert,
    record_frame,
    stack_frames,
)
from residual_bench.policies.bc.model import bc_controller, load_checkpoint
from residual_bench.policies.expert import CARRY_HEIGHT, Phase, ScriptedExpert
from residual_bench.registration import ENV_ID
from residual_bench.seeding import episode_seed
from residual_bench.sim.panda import POSITION_SCALE

#: Phases in which the expert believes it holds nothing yet.
_EMPTY_HANDED = (Phase.APPROACH, Phase.DESCEND)


def sync_phase(expert: ScriptedExpert, env: Any) -> None:
    """Move a shadow expert's phase to where the learned policy has brought the task.

    The expert re-approaches on its own when it loses the object; the other direction -
    the learned policy grasped the object while the expert still thought it was approaching -
    needs this: the expert then lifts (below carrying height) or carries it.
    """
    sim = env.unwrapped
    tcp = sim.robot.tcp_pose()[0]
    progress = sim.task.progress(sim.object_states, tcp)
    if progress["is_grasped"] and expert.phase in _EMPTY_HANDED:
        below = tcp[2] < CARRY_HEIGHT - 0.02
        expert.take_over(Phase.LIFT if below else Phase.TRANSPORT, sim.time)


class _HandMoved:
    """What an expert reads of the simulation, as it will be if the hand moves by ``shift``.

    The expert's continuation of a chunk is planned on this view: the hand where the
    previous rows' translations take it (the arm tracks its commands), the target object
    carried along when it is held, everything else - contacts, the task's progress, the other
    objects - as it is now, and the clock ``steps`` control steps on.
    """

    def __init__(self, env: Any, shift: np.ndarray, steps: int) -> None:
        sim = env.unwrapped
        tcp, orn = sim.robot.tcp_pose()
        self._tcp, self._orn = tcp + shift, orn
        self._progress = sim.task.progress(sim.object_states, tcp)
        states = list(sim.object_states)
        if self._progress["is_grasped"]:
            states[0] = replace(states[0], center=states[0].center + shift)
        self.object_states = states
        self.time = sim.time + steps * sim.dt
        self._task = sim.task
        self.unwrapped, self.task, self.robot = self, self, self

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self._tcp.copy(), self._orn.copy()

    def progress(self, states: list, tcp: np.ndarray) -> dict[str, Any]:
        return dict(self._progress)

    def __getattr__(self, name: str) -> Any:  # the task's goal, target, grasp_yaw, ...
        return getattr(self._task, name)


def expert_chunk(expert: ScriptedExpert, env: Any, chunk_len: int) -> np.ndarray:
    """The chunk of ``chunk_len`` actions ``expert`` would record from this state if it were
    in control: the label of one DAgger frame, shaped as a demonstration's chunk target.

    Row 0 is the expert's action now (it advances ``expert``'s phase, as acting does). The
    later rows are what a copy of it does as the hand follows the earlier rows (see
    :class:`_HandMoved`). A demonstration's chunk target is the expert's next actions along its
    own path; labelling a visited state with the expert's actions at the *next visited* states
    instead - where the learned policy, not the expert, moved the hand - asks, near the
    target, for the whole remaining distance in every row, four times the motion the expert
    would make (results/finetune/dagger-labels.md).
    """
    if chunk_len < 1:
        raise ValueError(f"chunk_len must be at least 1, got {chunk_len}")
    rows = [expert.act(env)]
    planner, shift = copy.deepcopy(expert), np.zeros(3)
    for step in range(1, chunk_len):
        shift = shift + rows[-1][:3] * POSITION_SCALE
        rows.append(planner.act(_HandMoved(env, shift, step)))
    return np.stack(rows).astype(np.float32)


def collect_corrections(
    episodes: int,
    checkpoint: str | Path | None = None,
    suites: tuple[str, ...] | list[str] | None = None,
    seed: int = 0,
    round_index: int = 0,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Roll out a bc checkpoint and label every visited state with the expert's chunk.

    Each frame's label is :func:`expert_chunk` from that state, as long as the network's
    chunks (``action_chunk``; ``action`` is its first row). Episodes cycle through ``suites``
    (None: the default ``dagger.suites``) on training objects; each has its own seed from
    ``seed``, ``round_index`` and its index, so rounds never repeat an episode.

    Returns:
        The labelled frames (the arrays of a demonstrations file and ``action_chunk``,
        ``episode`` numbered from 0) and a summary: ``env_steps`` (control steps taken),
        ``episodes``, ``successes``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    suites = tuple(suites if suites is not None else field_default(DaggerConfig, "suites"))
    rows: dict[str, list[Any]] = {k: [] for k in ARRAYS}
    chunks: list[np.ndarray] = []
    env_steps = successes = 0
    expert = demonstration_expert()
    envs = {
        suite: gym.make(
            ENV_ID,
            obs_mode="rgb+seg",
            image_size=IMAGE_SIZE,
            objects="train",
            suite=suite,
        )
        for suite in dict.fromkeys(suites)
    }
    controllers = {suite: bc_controller(env, checkpoint) for suite, env in envs.items()}
    chunk_len = int(load_checkpoint(checkpoint)["config"]["chunk_len"])
    try:
        bar = tqdm(range(episodes), desc=f"dagger round {round_index}", disable=not progress)
        for index in bar:
            suite = suites[index % len(suites)]
            env, controller = envs[suite], controllers[suite]

            def act(
                obs: dict,
                info: dict,
                env: Any = env,
                controller: Any = controller,
                index: int = index,
            ) -> Any:
                sync_phase(expert, env)
                chunks.append(expert_chunk(expert, env, chunk_len))  # the label
                record_frame(rows, obs, chunks[-1][0], index, env.unwrapped)
                return controller.act(obs, info)[0]

            def reset(info: dict, controller: Any = controller) -> None:
                controller.reset(info)
                expert.reset()

            seed_ = episode_seed(seed, "dagger", round_index, index)
            episode = run_episode(env, act, seed_, reset=reset, stop=collection_done)
            env_steps += episode.steps
            successes += int(episode.info["first_success_time"] is not None)
    finally:
        for env in envs.values():
            env.close()
    summary = {"env_steps": env_steps, "episodes": episodes, "successes": successes}
    return {**stack_frames(rows), "action_chunk": np.stack(chunks)}, summary
