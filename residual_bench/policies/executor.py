"""Run a slow, chunked base policy inside the fast control loop, in simulated time.

Timeline. The base runs at ``spec.control_hz``: native action i of a chunk covers
``1 / control_hz`` seconds, i.e. ``k = 1 / (control_hz * env_dt)`` env steps (k must be a whole
number to within 1e-6, otherwise construction fails rather than silently changing the base's
rate). A request goes out at the first step at or after its due time, carrying the *current*
observation, unless one is already in flight or the base is stalled; the due time is then moved
``replan_every`` base periods past the actual request. Only one request is in flight at a time,
so a base slower than its replanning rate is queried back to back. The answer becomes available
at ``request time + latency``; during a stall (the env's ``info["base_stalled"]``) nothing
arrives and nothing is sent, and answers due meanwhile arrive when the stall ends. A chunk is
converted to env actions when it starts playing (a relative or binary gripper continues from
the gripper command being executed then), and its row i plays on env steps
``[start + i k, start + (i + 1) k)``; a chunk already playing keeps this clock through a stall,
a waiting one (``hold``) starts after it.

Modes:

* ``hold``: every chunk is played to its end; one that arrives earlier waits and starts when the
  current one is exhausted (only the newest waiting chunk is kept).
* ``receding``: the newest chunk takes over at the step it arrives.

Alignment (``receding`` and ``ensemble``). With ``align="observation"`` (the default) row i of a
chunk belongs to ``[obs + i k, obs + (i + 1) k)`` counted from the step of the observation it
was computed from, so a late answer skips the rows whose time has passed: the robot carried on
with the previous plan meanwhile, and replaying the skipped rows would redo that motion (a
delta-action chunk played from its first row after a 150 ms delay overshoots by 150 ms of
motion). ``align="arrival"`` plays a chunk from its first row when it arrives.
* ``ensemble`` (ACT's temporal ensembling): every chunk that still covers the current step
  contributes its row for that step, weighted ``exp(-ensemble_decay * i)`` where i = 0 is the
  *oldest* contributing chunk (ACT's choice: older predictions weigh more, which smooths; a
  negative decay favours the newest).

When no row is available (nothing arrived yet, chunk exhausted, answer late) or the base is
stalled, the executor holds the last action it output and reports ``base_held``. Before the
first answer that action is "stay still, gripper open": six zeros and +1.

What is already decided. The chunks that have arrived fix the executor's next actions until
another answer arrives: :meth:`ChunkExecutor.planned_actions` gives them (without touching
the executor), so that a residual acting at the control rate can see what the base will do
over the next steps, not only what it does now.

A policy that cannot answer now (a remote server down, slow or answering an error) raises
:class:`BaseUnavailableError` from ``act``: the executor counts the failure, holds the last
action as above and tries again one base period later, so the residual keeps the robot stable.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from residual_bench.policies.base import BasePolicy, check_chunk, check_plan_steps
from residual_bench.policies.convert import ActionConverter

MODES = ("hold", "receding", "ensemble")
_EPS = 1e-9  # simulated times are sums of env_dt; compare them with a little slack


class BaseUnavailableError(RuntimeError):
    """Raised by a policy's ``act`` when no answer can be had now; the executor holds."""


@dataclass(frozen=True)
class LatencyModel:
    """Delay between a request and its answer: ``fixed_s + U(0, jitter_s)`` seconds.

    Raises:
        ValueError: a negative or non-finite delay.
    """

    fixed_s: float = 0.0
    jitter_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fixed_s", "jitter_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: must be finite and >= 0, got {value!r}")

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one delay in seconds (one draw per request, so the stream is reproducible)."""
        return self.fixed_s + float(rng.uniform(0.0, self.jitter_s))


@dataclass
class _Chunk:
    native: np.ndarray
    obs_time: float
    infer_time_s: float | None
    start: int = -1  # env step of row 0, set when the chunk starts playing
    env: np.ndarray | None = None
    clipped: np.ndarray | None = None


class ChunkExecutor:
    """Turns a chunked base policy into one env action per control step.

    Args:
        policy: the frozen base policy.
        env_dt: the env's control period in seconds (``env.unwrapped.dt``).
        mode: ``"hold"``, ``"receding"`` or ``"ensemble"`` (see the module docstring).
        replan_every: base periods between requests; default ``chunk_len`` for ``hold``, 1 else.
        ensemble_decay: temporal-ensembling rate; weight ``exp(-decay * i)``, i = 0 the oldest.
        latency: delay model; None means answers arrive in the step they are requested.
        converter: native -> env action; None builds one from the policy's spec and ``env_dt``.
        align: ``"observation"`` or ``"arrival"``: where a ``receding`` / ``ensemble`` chunk's
            first row is placed in time (see the module docstring); ``hold`` always plays a
            chunk whole from when it starts.

    Raises:
        ValueError: invalid argument, or a base period that is not a whole number of env steps.
    """

    def __init__(
        self,
        policy: BasePolicy,
        env_dt: float,
        mode: Literal["hold", "receding", "ensemble"] = "receding",
        replan_every: int | None = None,
        ensemble_decay: float = 0.1,
        latency: LatencyModel | None = None,
        converter: ActionConverter | None = None,
        align: Literal["observation", "arrival"] = "observation",
    ) -> None:
        if not isinstance(policy, BasePolicy):
            raise ValueError("policy: must have a spec, reset(instruction, seed) and act(...)")
        spec = policy.spec
        if not math.isfinite(env_dt) or env_dt <= 0:
            raise ValueError(f"env_dt: must be positive and finite, got {env_dt!r}")
        if mode not in MODES:
            raise ValueError(f"mode: unknown mode {mode!r}; valid choices: {', '.join(MODES)}")
        ratio = 1.0 / (spec.control_hz * env_dt)
        k = round(ratio)
        if k < 1 or abs(ratio - k) > 1e-6:
            raise ValueError(
                f"env_dt: a base period of 1/{spec.control_hz:g} s must be a whole number of "
                f"env steps of {env_dt:g} s, got {ratio:.6g}"
            )
        if align not in ("observation", "arrival"):
            raise ValueError(f"align: expected 'observation' or 'arrival', got {align!r}")
        if replan_every is None:
            replan_every = spec.chunk_len if mode == "hold" else 1
        if isinstance(replan_every, bool) or not isinstance(replan_every, int) or replan_every < 1:
            raise ValueError(f"replan_every: must be an integer >= 1, got {replan_every!r}")
        if not math.isfinite(ensemble_decay):
            raise ValueError(f"ensemble_decay: must be finite, got {ensemble_decay!r}")
        if converter is None:
            converter = ActionConverter(spec, env_dt=env_dt)
        elif abs(converter.env_dt - env_dt) > 1e-12:
            raise ValueError(
                f"converter: built for env_dt={converter.env_dt:g}, the executor runs at {env_dt:g}"
            )
        self.policy = policy
        self.spec = spec
        self.env_dt = float(env_dt)
        self.mode = mode
        self.steps_per_action = k
        """Env steps each native action is played for."""
        self.replan_every = replan_every
        self.ensemble_decay = float(ensemble_decay)
        self.latency = latency
        self.converter = converter
        self.align = align
        self._clear("", None)

    def reset(self, instruction: str, seed: int | None) -> None:
        """Start an episode: reset the policy, the converter and the latency generator.

        Args:
            instruction: the episode's instruction, passed to every ``act`` call.
            seed: seeds the policy and the latency draws; the same seed gives the same actions.
        """
        self.policy.reset(instruction, seed)
        self._clear(instruction, seed)

    def _clear(self, instruction: str, seed: int | None) -> None:
        self.converter.reset()
        self._instruction = instruction
        self._rng = np.random.default_rng(seed)
        self._t0: float | None = None
        self._n = -1  # env step of the last action output, counted from the first step
        self._next_due = 0.0
        self._in_flight: tuple[float, _Chunk] | None = None  # (arrival time, answer)
        self._current: _Chunk | None = None
        self._waiting: _Chunk | None = None  # hold mode: arrived, starts when current ends
        self._playing: list[_Chunk] = []  # ensemble mode
        self._last = np.zeros(7)
        self._last[6] = 1.0
        self._last_obs_time: float | None = None
        self._calls = 0
        self._errors = 0

    def step(
        self, obs: dict[str, Any], time: float, stalled: bool = False
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The base action for this control step.

        Args:
            obs: the env observation now (sent with any request made this step).
            time: simulated seconds now (``info["time"]``).
            stalled: the base delivers nothing now (``info["base_stalled"]``).

        Returns:
            ``(action, info)``: the env action, shape (7,) float64, and ``base_fresh``,
            ``base_held``, ``base_action_age_s``, ``base_calls``, ``base_infer_time_s``
            (of a chunk that arrived this step, else None), ``base_clipped`` (the converter
            clipped the rows this action came from). ``base_action_age_s`` counts from the
            observation of the (newest contributing) chunk behind the action, and from the
            first step while nothing has arrived yet. ``base_errors`` counts the calls that
            raised :class:`BaseUnavailableError` so far, ``base_error`` is this step's message.
        """
        time = float(time)
        if self._t0 is None:
            self._t0 = self._next_due = time
        n = self._n = round((time - self._t0) / self.env_dt)
        arrived, error = None, None
        if not stalled:
            arrived = self._deliver(time, n)
            if self._in_flight is None and time >= self._next_due - _EPS:
                error = self._request(obs, time)
                arrived = self._deliver(time, n) or arrived
        picked = None if stalled else self._select(n)
        held = picked is None
        clipped = False
        if picked is not None:
            self._last, clipped, self._last_obs_time = picked
        age_from = self._t0 if self._last_obs_time is None else self._last_obs_time
        info = {
            "base_fresh": arrived is not None,
            "base_held": held,
            "base_action_age_s": time - age_from,
            "base_calls": self._calls,
            "base_infer_time_s": None if arrived is None else arrived.infer_time_s,
            "base_clipped": clipped,
            "base_errors": self._errors,
            "base_error": error,
        }
        return self._last.copy(), info

    def _request(self, obs: dict[str, Any], time: float) -> str | None:
        # The policy is asked now, with this observation: whatever the delay, the answer is
        # computed from what the robot saw at request time.
        try:
            chunk = self.policy.act(obs, self._instruction)
        except BaseUnavailableError as exc:
            # No fresh chunk: the current one (or the held action) carries on; ask again one
            # base period later rather than every env step, as a deployment would.
            self._errors += 1
            self._next_due = time + self.spec.period_s
            return str(exc) or type(exc).__name__
        check_chunk(self.spec, chunk)
        self._calls += 1
        delay = self.latency.sample(self._rng) if self.latency is not None else 0.0
        infer = chunk.info.get("infer_time_s")
        answer = _Chunk(chunk.actions.copy(), time, None if infer is None else float(infer))
        self._in_flight = (time + delay, answer)
        self._next_due = time + self.replan_every * self.spec.period_s
        return None

    def _deliver(self, time: float, n: int) -> _Chunk | None:
        if self._in_flight is None or time < self._in_flight[0] - _EPS:
            return None
        chunk = self._in_flight[1]
        self._in_flight = None
        if self.mode == "hold":
            self._waiting = chunk
        else:
            start = n
            if self.align == "observation":
                start = round((chunk.obs_time - self._t0) / self.env_dt)
            self._start(chunk, start)
            if self.mode == "receding":
                self._current = chunk
            else:
                self._playing.append(chunk)
        return chunk

    def _start(self, chunk: _Chunk, n: int) -> None:
        chunk.start = n
        self.converter.gripper = float(self._last[6])
        chunk.env, chunk.clipped = self.converter.convert_chunk(chunk.native)

    def _row(self, chunk: _Chunk | None, n: int) -> int | None:
        if chunk is None:
            return None
        i = (n - chunk.start) // self.steps_per_action
        return i if 0 <= i < len(chunk.native) else None

    def planned_actions(self, n_steps: int) -> np.ndarray:
        """The env actions :meth:`step` will output on the next ``n_steps`` steps, if no new
        answer arrives meanwhile and the base is not stalled: what the chunks that have
        arrived already decide.

        Played as :meth:`step` plays them: in ``hold`` a waiting chunk starts when the current
        one ends (converted from the gripper command then), ``ensemble`` weighs the chunks that
        cover each step, and past the end of every chunk the last action is held. Before the
        first step, or while nothing has arrived, that is the held action repeated. Nothing
        of the executor changes (chunks, converter, random draws), so calling this leaves the
        episode exactly as it would have been.

        Args:
            n_steps: how many steps ahead, from the one after the last :meth:`step`.

        Returns:
            Shape ``(n_steps, 7)`` float64: row j is the action of the (j + 1)-th next step.

        Raises:
            ValueError: ``n_steps`` is not an integer >= 0.
        """
        plan = np.empty((check_plan_steps(n_steps), 7))
        last, current, waiting = self._last.copy(), self._current, self._waiting
        for j in range(len(plan)):
            n = self._n + 1 + j
            if self.mode == "hold" and waiting is not None and self._row(current, n) is None:
                current, waiting = self._started_copy(waiting, n, float(last[6])), None
            picked = self._action_at(n, current, self._playing)
            if picked is not None:
                last = picked[0]
            plan[j] = last
        return plan

    def _started_copy(self, chunk: _Chunk, n: int, gripper: float) -> _Chunk:
        """``chunk`` as :meth:`_start` would start it at step ``n`` after the gripper command
        ``gripper``, converted by a copy of the converter: ``chunk`` and the converter stay
        as they are."""
        converter = copy.deepcopy(self.converter)
        converter.gripper = gripper
        env, clipped = converter.convert_chunk(chunk.native)
        return dataclasses.replace(chunk, start=n, env=env, clipped=clipped)

    def _select(self, n: int) -> tuple[np.ndarray, bool, float] | None:
        if (
            self.mode == "hold"
            and self._waiting is not None
            and self._row(self._current, n) is None
        ):
            self._start(self._waiting, n)
            self._current, self._waiting = self._waiting, None
        if self.mode == "ensemble":
            self._playing = [c for c in self._playing if c.start + self._span(c) > n]
        return self._action_at(n, self._current, self._playing)

    def _action_at(
        self, n: int, current: _Chunk | None, playing: list[_Chunk]
    ) -> tuple[np.ndarray, bool, float] | None:
        """The action of step ``n`` from these chunks, whether its rows were clipped and the
        time of the observation behind it; None where no chunk covers ``n``."""
        if self.mode != "ensemble":
            i = self._row(current, n)
            if i is None:
                return None
            return current.env[i].copy(), bool(current.clipped[i]), current.obs_time
        rows = [(c, self._row(c, n)) for c in playing]
        rows = [(c, i) for c, i in rows if i is not None]
        if not rows:
            return None
        # Oldest first: self._playing is in arrival order.
        w = np.exp(-self.ensemble_decay * np.arange(len(rows)))
        stacked = np.stack([c.env[i] for c, i in rows])
        action = np.clip((w[:, None] * stacked).sum(axis=0) / w.sum(), -1.0, 1.0)
        clipped = any(bool(c.clipped[i]) for c, i in rows)
        return action, clipped, rows[-1][0].obs_time

    def _span(self, chunk: _Chunk) -> int:
        return len(chunk.native) * self.steps_per_action
