"""residual-bench: residual reinforcement learning on top of frozen robot policies.

Importing the package registers its gymnasium environments::

    import gymnasium as gym
    import residual_bench  # noqa: F401

    env = gym.make("ResidualPickPlace-v1")
"""

__version__ = "0.1.0"

from residual_bench.sim.native_output import quiet_native_output

with quiet_native_output():
    import pybullet  # noqa: F401  (its first import prints a build banner)

# After pybullet's first import: the task modules it loads import pybullet too.
from residual_bench.registration import register_envs  # noqa: E402

register_envs()

__all__ = ["__version__", "register_envs"]
