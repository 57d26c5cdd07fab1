"""The names an operator-run session chooses from: trial plans and failure categories.

Apart from the session itself so that ``bench real-eval --help`` lists them without loading
the evaluation stack.
"""

PLANS: dict[str, tuple[str | None, ...]] = {
    "nominal": (None,),
    "poke": ("poke",),
    "slide": ("slide",),
    "drop": ("drop",),
    "mixed": ("poke", "slide", "drop", None),
}
"""Each plan's perturbation per trial, in turn (None: no perturbation)."""
FAILURE_CATEGORIES = ("missed_grasp", "dropped", "misplaced", "collision", "timeout", "other")
"""What an operator may say a failed trial was."""
