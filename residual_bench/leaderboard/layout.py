"""Names and limits of the leaderboard's on-disk layout (see ``docs/leaderboard.md``).

Kept apart from the code that reads and writes submissions, so that the command line can
name its defaults without importing it.
"""

FORMAT = "residual-bench-submission"
SCHEMA_VERSION = 1
# Benchmark versions whose episodes this code reproduces (their spec hashes are recomputed).
KNOWN_BENCHMARK_VERSIONS = ("0.1.0",)
MAX_BYTES = 5 * 1024 * 1024  # the whole submission directory, checkpoints included
BASE_WEIGHTS_BYTES = 1 << 30  # a base's weights file is the package's own, not submitted
SUBMISSION_FILE = "submission.json"
EPISODES_FILE = "episodes.jsonl"
CHECKPOINTS_DIR = "checkpoints"
SUBMISSIONS_DIR = "submissions"
VERIFICATIONS_DIR = "verifications"
DEFAULT_ROOT = "leaderboards"
