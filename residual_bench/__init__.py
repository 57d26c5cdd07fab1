"""residual-bench: residual reinforcement learning on top of frozen robot policies.

Importing the package registers its gymnasium environments::

    import gymnasium as gym
    import residual_bench  # noqa: F401

    env = gym.make("ResidualPickPlace-v0")
"""

__version__ = "0.1.0"

from residual_bench.registration import register_envs

register_envs()

__all__ = ["__version__", "register_envs"]
