"""Operator-run evaluation sessions on the real robot (or the twin, for a dry run).

A session follows a pre-generated :class:`Trial` plan (written to ``plan.json`` before the
first trial): a scripted reset to the trial's joints, the operator confirms the scene against
the reference image, the terminal cues ``PERTURB NOW`` at the planned time and the operator
confirms the disturbance with a key (that moment is the event time), and at the end the
operator labels success and a failure category. Records go to ``episodes.jsonl`` in the
shared format with ``extra.real = True``, so ``bench report`` reads them unchanged.

Success and completion are the operator's labels (key ``s`` marks the moment of success;
without it a success is dated at the episode's end). Recovery *times* need object tracking
and stay ``None``; the recovery *rate* (perturbed episodes that succeed) is exact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from residual_bench.episodes.loop import run_episode
from residual_bench.episodes.records import EpisodeRecord, append_jsonl
from residual_bench.real.plans import PLANS
from residual_bench.sim.panda import HOME_JOINTS

ESTOP_REMINDER = "Keep the hardware E-stop in reach at all times; press it if anything looks wrong."


class OperatorAbort(ValueError):
    """The operator aborted the session (records written so far are kept)."""


@dataclass
class Trial:
    """One planned trial: reset joints, object offset from the reference placement (m),
    perturbation type (``None`` for none) and when to cue it (s after reset)."""

    index: int
    seed: int
    joints: list[float]
    object_offset: list[float]
    perturbation: str | None
    perturb_time: float | None


def make_plan(name: str, trials: int, seed: int = 0, episode_seconds: float = 12.0) -> list[Trial]:
    """A reproducible trial plan.

    Raises:
        ValueError: an unknown plan name or a non-positive number of trials.
    """
    if name not in PLANS:
        raise ValueError(f"unknown plan {name!r}; valid choices: {', '.join(PLANS)}")
    if trials < 1:
        raise ValueError(f"--trials must be at least 1, got {trials}")
    rng = np.random.default_rng(seed)
    plan = []
    for i in range(trials):
        kind = PLANS[name][i % len(PLANS[name])]
        joints = HOME_JOINTS + rng.uniform(-0.05, 0.05, 7)
        when = float(rng.uniform(0.3, 0.6) * episode_seconds) if kind else None
        offset = rng.uniform(-0.03, 0.03, 2).round(3).tolist()
        plan.append(Trial(i, int(rng.integers(2**31)), joints.tolist(), offset, kind, when))
    return plan


class Operator(Protocol):
    """What a session asks of its operator; raise :class:`OperatorAbort` to abort."""

    name: str

    def message(self, text: str) -> None:
        """Show a line."""

    def confirm_scene(self, trial: Trial, reference: Path | None) -> None:
        """Wait until the scene matches the reference image and the trial's offset."""

    def cue_perturbation(self, trial: Trial) -> None:
        """Cue ``PERTURB NOW``."""

    def poll(self) -> str | None:
        """A key pressed since the last poll: ``p`` perturbed, ``s`` success, ``a`` abort."""

    def label(self, trial: Trial, reason: str | None) -> tuple[bool, str | None]:
        """Success and failure category at the end of a trial."""

    def acknowledge_fault(self, reason: str) -> bool:
        """Whether the robot was inspected and may recover after ``reason``."""


class ScriptedOperator:
    """Scripted answers, for tests and dry runs on the twin.

    Args:
        labels: ``(success, category)`` per trial; when absent, ``oracle()`` labels.
        oracle: a callable returning the twin's task progress (``success`` key).
        perturb_delay_steps: steps between the cue and the confirmation key.
        abort_at: ``(trial, step)`` at which the abort key is pressed.
        acknowledge: the answer to fault acknowledgements.
    """

    name = "scripted"

    def __init__(self, labels: list[tuple[bool, str | None]] | None = None, oracle: Any = None,
                 perturb_delay_steps: int = 2, abort_at: tuple[int, int] | None = None,
                 acknowledge: bool = True) -> None:  # fmt: skip
        self.labels, self.oracle = labels, oracle
        self.delay, self.abort_at, self.acknowledge = perturb_delay_steps, abort_at, acknowledge
        self.transcript: list[str] = []
        self._trial, self._step, self._cued_at = -1, 0, None

    def message(self, text: str) -> None:
        self.transcript.append(text)

    def confirm_scene(self, trial: Trial, reference: Path | None) -> None:
        self.transcript.append(f"scene confirmed for trial {trial.index}")
        self._trial, self._step, self._cued_at = trial.index, 0, None

    def cue_perturbation(self, trial: Trial) -> None:
        self.transcript.append("PERTURB NOW")
        self._cued_at = self._step

    def poll(self) -> str | None:
        self._step += 1
        if self.abort_at == (self._trial, self._step):
            return "a"
        if self._cued_at is not None and self._step - self._cued_at >= self.delay:
            self._cued_at = None
            return "p"
        return None

    def label(self, trial: Trial, reason: str | None) -> tuple[bool, str | None]:
        if self.labels is not None:
            return self.labels[trial.index % len(self.labels)]
        success = bool(self.oracle()["success"]) if self.oracle else False
        return success, None if success else (reason or "other")

    def acknowledge_fault(self, reason: str) -> bool:
        self.transcript.append(f"fault {reason} acknowledged={self.acknowledge}")
        return self.acknowledge


@dataclass
class _TrialLog:
    """What the operator and the safety layer report during one trial."""

    started: bool = False
    cued: bool = False
    cue_time: float | None = None
    success_time: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    late: int = 0
    frames: list[np.ndarray] = field(default_factory=list)


def _operator_step(
    operator: Any, real: Any, trial: Trial, info: dict[str, Any], log: _TrialLog, kept: int,
    out: Path,
) -> None:  # fmt: skip
    """One control step of a trial: cue the perturbation, read the operator's key (abort,
    perturbation done, success seen), count safety interventions and late frames."""
    if trial.perturbation and not log.cued and info["time"] >= trial.perturb_time:
        operator.cue_perturbation(trial)
        log.cued, log.cue_time = True, info["time"]
    key = operator.poll()
    if key == "a":
        real.driver.stop()
        raise OperatorAbort(
            f"session aborted by the operator in trial {trial.index + 1}; "
            f"{kept} record(s) kept in {out / 'episodes.jsonl'}"
        )
    if key == "p" and log.cued:
        timing = {"planned_time": trial.perturb_time, "cue_time": log.cue_time}
        info["new_events"] = [{"type": trial.perturbation, "trigger": "operator",
            "time": info["time"], "magnitude": 0.0, "target": "object",
            "params": timing}]  # fmt: skip
    if key == "s" and log.success_time is None:
        log.success_time = info["time"]
    for kind in info.get("safety_interventions", []):
        log.counts[kind] = log.counts.get(kind, 0) + 1
    log.late += bool(info.get("frame_late"))
    if real.render_mode == "rgb_array":
        log.frames.append(real.render())


def _save_video(frames: list[np.ndarray], path: Path, fps: int) -> None:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps),
                   loop=0)  # fmt: skip


def run_session(env: Any, controller: Any, plan: list[Trial], operator: Operator,
                out: str | Path, *, base: str, residual: Any = None, plan_name: str = "custom",
                alpha_scale: float = 1.0) -> list[EpisodeRecord]:  # fmt: skip
    """Run every trial of ``plan`` and append one record per trial to ``out/episodes.jsonl``.

    Args:
        env: a ``PandaReal-v0`` env (with ``render_mode="rgb_array"`` for videos).
        controller: the base (``reset(info)``, ``act(obs, info) -> (action, info)``).
        plan: the trials.
        operator: who answers prompts.
        out: results directory.
        base: the base's name for the records.
        residual: a loaded residual (:func:`residual_bench.residual.load_residual`) or None.
        plan_name: the plan's name (the records' ``suite``).
        alpha_scale: multiplies the residual's alpha (0: computed and logged, not applied).

    Raises:
        OperatorAbort: the operator pressed abort or declined a fault acknowledgement.
    """
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps([asdict(t) for t in plan], indent=1) + "\n")
    real = env.unwrapped
    stepper = residual.wrap(env, controller) if residual is not None else None
    if stepper is not None:
        stepper.scale = float(alpha_scale)
    spec = json.dumps([plan_name, real.control_hz, asdict(real.safety.limits)], default=str)
    spec_hash = hashlib.sha256(spec.encode()).hexdigest()[:16]
    operator.message(ESTOP_REMINDER)
    records = []
    for trial in plan:
        operator.message(f"trial {trial.index + 1}/{len(plan)}: resetting")
        log = _TrialLog()

        def reset(info: dict[str, Any], trial: Trial = trial) -> None:
            if stepper is None:
                controller.reset(info)
            operator.confirm_scene(trial, out / "reference.gif" if records else None)

        def on_step(env: Any, info: dict[str, Any], trial: Trial = trial, log: Any = log) -> None:
            if not log.started:  # the reset
                log.started = True
                return
            _operator_step(operator, real, trial, info, log, len(records), out)

        if stepper is not None:
            episode_env, act = stepper, lambda obs, info: residual.act(obs)
        else:
            episode_env, act = env, lambda obs, info: controller.act(obs, info)[0]
        identity = {
            "env_id": "PandaReal-v0",
            "env_spec_hash": spec_hash,
            "suite": plan_name,
            "objects": "real",
            "base": base,
            "residual": getattr(residual, "name", None),
        }
        options = {"joints": trial.joints}
        episode = run_episode(
            episode_env, act, trial.seed, options=options, reset=reset, on_step=on_step,
            record=identity,
        )  # fmt: skip
        info, frames = episode.info, log.frames
        reason = info.get("termination_reason")
        success, category = operator.label(trial, reason)
        if reason is not None:
            success, category = False, reason
            if not operator.acknowledge_fault(reason):
                raise OperatorAbort(f"fault {reason!r} not acknowledged; session stopped")
            real.acknowledge_fault(operator.name)
        video = None
        if frames:
            video = f"videos/trial_{trial.index:03d}.gif"
            _save_video(frames, out / video, real.control_hz)
            if not records:
                _save_video(frames[:1], out / "reference.gif", real.control_hz)
        record = episode.record
        record.extra.update({
            "real": True, "driver": real.driver.name, "trial": trial.index,
            "plan": plan_name, "perturbation": trial.perturbation,
            "object_offset": trial.object_offset, "failure_category": category,
            "termination_reason": reason, "video": video, "operator": operator.name,
            "alpha_scale": alpha_scale, "safety_interventions": log.counts,
            "late_frames": log.late,
        })  # fmt: skip
        record.success = bool(success)
        record.first_success_time = (log.success_time or record.episode_time) if success else None
        append_jsonl(out / "episodes.jsonl", record)
        records.append(record)
        operator.message(f"trial {trial.index + 1}: success={success} category={category}")
    return records
