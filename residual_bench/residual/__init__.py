"""Residual agents on top of frozen bases: the residual env, its features, training, loading.

The registered env id builds the residual env itself when given a base::

    import gymnasium as gym
    import residual_bench  # noqa: F401

    env = gym.make("ResidualPickPlace-v1", base="scripted", suite="mixed", features="objects")
"""

from residual_bench.residual.env import (
    DEFAULT_ALPHA,
    ResidualEnv,
    alpha_vector,
    observation_layout,
)
from residual_bench.residual.factory import make_env, make_residual_env, residual_env_kwargs
from residual_bench.residual.features import FEATURE_MODES

__all__ = [
    "DEFAULT_ALPHA",
    "FEATURE_MODES",
    "ResidualEnv",
    "alpha_vector",
    "make_env",
    "make_residual_env",
    "observation_layout",
    "residual_env_kwargs",
]
