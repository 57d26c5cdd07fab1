"""OpenVLA's action tokens: 256 uniform bins over [-1, 1] on the last ids of the vocabulary.

Upstream's convention, reproduced exactly: ``bins = linspace(-1, 1, n_bins)`` are bin *edges*
and the ``n_bins - 1`` midpoints between them are the values a token decodes to. Encoding
clips to [-1, 1], takes ``d = digitize(x, bins)`` (1..n_bins) and emits token
``vocab_size - d``; decoding inverts that with ``clip(vocab_size - token - 1, 0, n_bins - 2)``,
so tokens outside the action range decode to the extreme bin centres instead of failing (the
LM's argmax runs over the whole vocabulary). ``vocab_size`` is the tokenizer's (32000 for
Llama-2), not the padded LM's: action tokens are ids 31744-31999.

Un-normalisation uses the dataset's 1st / 99th percentiles on the dimensions its ``mask``
selects (default: all); the others, the gripper for BridgeData, pass through as decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ActionTokenizer:
    """Bin edges, centres and the token <-> normalised-action maps.

    Args:
        vocab_size: size of the tokenizer's vocabulary (without the LM's padding).
        n_bins: number of bin edges (``n_action_bins`` in the config).
    """

    def __init__(self, vocab_size: int = 32000, n_bins: int = 256) -> None:
        if n_bins < 2 or vocab_size <= n_bins:
            raise ValueError(f"need 2 <= n_bins < vocab_size, got {n_bins} and {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.n_bins = int(n_bins)
        self.bins = np.linspace(-1.0, 1.0, self.n_bins)
        self.bin_centers = (self.bins[:-1] + self.bins[1:]) / 2.0

    @property
    def token_range(self) -> tuple[int, int]:
        """Lowest and highest token id an in-range action encodes to (inclusive)."""
        return self.vocab_size - self.n_bins, self.vocab_size - 1

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Normalised actions -> token ids (what training fed the LM)."""
        clipped = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        return self.vocab_size - np.digitize(clipped, self.bins)

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """Token ids -> normalised actions (bin centres), any id accepted."""
        index = self.vocab_size - np.asarray(token_ids, dtype=np.int64) - 1
        return self.bin_centers[np.clip(index, 0, self.bin_centers.shape[0] - 1)]


def resolve_unnorm_key(norm_stats: dict[str, Any], unnorm_key: str | None) -> str:
    """The dataset whose statistics un-normalise actions.

    Args:
        norm_stats: the checkpoint's statistics, by dataset name.
        unnorm_key: the requested name; None is allowed only for a single-dataset model.

    Raises:
        ValueError: no statistics, None with several datasets, or an unknown name; the
            message lists the available names.
    """
    names = sorted(norm_stats)
    if not names:
        raise ValueError("the checkpoint has no dataset statistics (config.json 'norm_stats')")
    if unnorm_key is None:
        if len(names) != 1:
            raise ValueError(
                "the model was trained on more than one dataset: pass an unnorm_key to choose "
                f"the statistics that un-normalise its actions; available: {', '.join(names)}"
            )
        return names[0]
    if unnorm_key not in norm_stats:
        raise ValueError(
            f"unnorm_key {unnorm_key!r} is not among the checkpoint's dataset statistics; "
            f"available: {', '.join(names)}"
        )
    return unnorm_key


class ActionStats:
    """The ``action`` statistics of one dataset, ready to un-normalise with.

    Args:
        stats: ``norm_stats[key]["action"]`` (``q01``, ``q99`` and optionally ``mask``).
        key: the dataset name, for error messages.

    Raises:
        ValueError: missing or inconsistent fields.
    """

    def __init__(self, stats: dict[str, Any], key: str) -> None:
        try:
            self.q01 = np.asarray(stats["q01"], dtype=np.float64)
            self.q99 = np.asarray(stats["q99"], dtype=np.float64)
        except (KeyError, TypeError):
            raise ValueError(f"norm_stats[{key!r}]['action'] lacks 'q01' / 'q99'") from None
        mask = stats.get("mask")
        self.mask = np.ones_like(self.q01, dtype=bool) if mask is None else np.asarray(mask, bool)
        if not self.q01.ndim == 1 or not self.q01.shape == self.q99.shape == self.mask.shape:
            raise ValueError(f"norm_stats[{key!r}]['action']: q01, q99, mask shapes differ")

    @classmethod
    def from_norm_stats(cls, norm_stats: dict[str, Any], unnorm_key: str | None) -> ActionStats:
        """Statistics of the dataset :func:`resolve_unnorm_key` picks."""
        key = resolve_unnorm_key(norm_stats, unnorm_key)
        entry = norm_stats[key]
        if not isinstance(entry, dict) or "action" not in entry:
            raise ValueError(f"norm_stats[{key!r}] has no 'action' statistics")
        return cls(entry["action"], key)

    @property
    def action_dim(self) -> int:
        """Number of action tokens to generate (7 for the released models)."""
        return int(self.q01.shape[0])

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        """[-1, 1] values -> dataset units on masked dimensions, others unchanged."""
        x = np.asarray(normalized, dtype=np.float64)
        scaled = 0.5 * (x + 1.0) * (self.q99 - self.q01) + self.q01
        return np.where(self.mask, scaled, x)
