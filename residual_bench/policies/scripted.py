"""Presets of the privileged scripted controller, as named policies.

They differ in how much they see and how often they decide, which is what perturbations
punish: ``expert`` reacts every step, ``expert-open-loop`` never looks at the object again
after the first frame, ``expert-4hz`` decides as slowly as a large VLA.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from residual_bench.policies.expert import ScriptedExpert


@dataclass(frozen=True)
class ScriptedPolicy:
    """A privileged scripted controller and how often it gets to act."""

    name: str
    description: str
    make: Callable[[], ScriptedExpert]
    act_every: int = 1  # control steps per decision; the action is held in between


SCRIPTED_POLICIES = {
    p.name: p
    for p in (
        ScriptedPolicy(
            "expert", "closed-loop scripted expert at the control rate", lambda: ScriptedExpert()
        ),
        ScriptedPolicy(
            "expert-open-loop",
            "the expert planning once from the first frame",
            lambda: ScriptedExpert(open_loop=True),
        ),
        ScriptedPolicy(
            "expert-4hz",
            "the expert deciding at 4 Hz (at 20 Hz control), each action held 250 ms",
            lambda: ScriptedExpert(hold_steps=5),
            act_every=5,
        ),
    )
}
