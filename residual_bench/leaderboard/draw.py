"""Which episodes ``bench verify`` re-runs: a draw the submitter cannot steer, and its audit.

A submitter who knew the draw could edit exactly the episodes that are not re-run. So the
draw is seeded by a *nonce* the verifier picks when verifying (a fresh random one unless the
verifier gives it), combined with the submission's id:

    seed    = int(sha256(f"{nonce}:{submission_id}").hexdigest(), 16)
    indices = sorted(numpy.random.default_rng(seed).choice(n, size=min(k, n), replace=False))

over the ``n`` records of ``episodes.jsonl`` in file order. The submission is content-addressed
and immutable before the nonce exists, so no choice of the submitter's can aim the draw. The
verification file records the nonce, the rule, ``n``, ``k`` and the indices, and
:func:`audit_draw` recomputes them, so anyone can check afterwards that the episodes re-run
were the ones the nonce drew.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

RULE = (
    "indices = sorted(numpy.random.default_rng(int(sha256(f'{nonce}:{submission}')"
    ".hexdigest(), 16)).choice(n, size=min(k, n), replace=False)) over the records of "
    "episodes.jsonl in file order"
)
NONCE_HEX_DIGITS = (32, 128)


def new_nonce() -> str:
    """A fresh 128-bit nonce, as 32 hex digits."""
    return secrets.token_hex(16)


def check_nonce(nonce: Any) -> str:
    """``nonce`` if it is 32 to 128 lowercase hex digits.

    Raises:
        ValueError: anything else (named, with what is expected).
    """
    low, high = NONCE_HEX_DIGITS
    if not (
        isinstance(nonce, str)
        and low <= len(nonce) <= high
        and all(c in "0123456789abcdef" for c in nonce)
    ):
        raise ValueError(f"--nonce: expected {low} to {high} lowercase hex digits")
    return nonce


def draw_indices(submission_id: str, nonce: str, n: int, k: int) -> list[int]:
    """The indices of the records to re-run (see the module docstring)."""
    if k < 1:
        raise ValueError(f"--k must be at least 1, got {k}")
    digest = hashlib.sha256(f"{check_nonce(nonce)}:{submission_id}".encode()).hexdigest()
    rng = np.random.default_rng(int(digest, 16))
    picked = rng.choice(n, size=min(k, n), replace=False)
    return sorted(int(i) for i in picked)


def draw_record(submission_id: str, nonce: str, n: int, k: int) -> dict[str, Any]:
    """What a verification file stores about its draw, so it can be audited."""
    return {
        "nonce": nonce,
        "rule": RULE,
        "n": n,
        "k": k,
        "indices": draw_indices(submission_id, nonce, n, k),
    }


def audit_draw(replay: Mapping[str, Any], submission_id: str, n: int) -> str | None:
    """Why a stored replay verification's draw does not check out, or None when it does.

    Checks that the draw was made with the nonce rule, over all ``n`` records of the
    submission, and that the episodes reported are exactly the drawn ones.
    """
    draw = replay.get("draw")
    if not isinstance(draw, Mapping):
        return "records no nonce draw (made before draws were audited): verify it again"
    try:
        k = int(draw["k"])
        expected = draw_indices(submission_id, draw["nonce"], n, k)
    except (KeyError, TypeError, ValueError) as exc:
        return f"its draw cannot be recomputed ({exc})"
    if draw.get("n") != n:
        return f"drew from {draw.get('n')} records, the submission has {n}"
    if draw.get("indices") != expected:
        return "its recorded indices are not the ones its nonce draws"
    reported = [e.get("record_index") for e in replay.get("episodes", [])]
    if reported != expected:
        return "the episodes it reports are not the ones its nonce draws"
    return None
