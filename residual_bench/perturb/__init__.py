"""In-episode perturbations: poke, slide, drop and base-policy latency, organised in suites."""

from residual_bench.perturb.events import PERTURBATIONS, Drop, Latency, Perturbation, Poke, Slide
from residual_bench.perturb.scheduler import PerturbationScheduler
from residual_bench.perturb.suite import (
    PHASES,
    Suite,
    check_suite_applies,
    load_suite,
    suite_applies,
    suite_names,
)

__all__ = [
    "PERTURBATIONS",
    "PHASES",
    "Drop",
    "Latency",
    "Perturbation",
    "PerturbationScheduler",
    "Poke",
    "Slide",
    "Suite",
    "check_suite_applies",
    "load_suite",
    "suite_applies",
    "suite_names",
]
