"""The leaderboard: submissions, their validation and verification, and the generated tables.

- :mod:`.submission`: the submission layout, content hashes and ``bench submit``;
- :mod:`.validate`: the rules of ``bench leaderboard check``;
- :mod:`.verify`: ``bench verify`` (re-run episodes, private held-out seeds);
- :mod:`.render`: ``leaderboards/README.md`` and ``index.html``;
- :mod:`.cli`: :func:`~.cli.add_leaderboard_parsers` for the ``bench`` command line.

Rules and workflow: ``docs/leaderboard.md``.
"""

from residual_bench.leaderboard.submission import checkpoint_hash, submission_id, submit
from residual_bench.leaderboard.validate import Failure, validate_all, validate_submission

__all__ = [
    "Failure",
    "checkpoint_hash",
    "submission_id",
    "submit",
    "validate_all",
    "validate_submission",
]
