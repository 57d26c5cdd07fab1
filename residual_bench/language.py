"""Instruction features for small learned policies.

Language models embed ``info["instruction"]`` themselves; a small policy trained from scratch
gets this fixed vector in the observation instead.
"""

from __future__ import annotations

import zlib

import numpy as np

INSTRUCTION_DIM = 32


def instruction_features(instruction: str, dim: int = INSTRUCTION_DIM) -> np.ndarray:
    """A fixed, hashed bag-of-words vector of an instruction (same in every process).

    Enough for a small learned policy to tell instructions apart; language models embed
    the string themselves from ``info["instruction"]``.
    """
    vec = np.zeros(dim, dtype=np.float32)
    for word in instruction.lower().split():
        h = zlib.crc32(word.encode())
        vec[h % dim] += 1.0 if (h >> 16) & 1 else -1.0
    norm = np.linalg.norm(vec)
    return vec / norm if norm > 0 else vec


def instruction_words(instruction: str) -> list[str]:
    """The lower-case words of an instruction."""
    return instruction.lower().split()


def word_counts(instruction: str, vocabulary: list[str]) -> np.ndarray:
    """How often each word of ``vocabulary`` occurs in ``instruction`` (other words ignored).

    Unlike :func:`instruction_features` no two words share a slot, so a colour is never
    confused with a template word; a learned policy keeps its vocabulary with its weights,
    as a language model keeps its tokenizer.
    """
    index = {word: i for i, word in enumerate(vocabulary)}
    vec = np.zeros(len(vocabulary), dtype=np.float32)
    for word in instruction_words(instruction):
        if word in index:
            vec[index[word]] += 1.0
    return vec
