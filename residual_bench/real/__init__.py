"""The real Franka Panda: drivers, cameras, the safety layer, the env and operator sessions.

``gym.make("PandaReal-v0", driver="twin")`` runs everything on the PyBullet twin; see
``docs/real_robot.md`` for hardware bring-up.
"""

from residual_bench.real.driver import (
    DisconnectError,
    DriverUnavailableError,
    ReflexError,
    RobotDriver,
    RobotFault,
    RobotState,
    UserStopError,
)
from residual_bench.real.env import FaultNotAcknowledged, PandaRealEnv, make_driver
from residual_bench.real.safety import Intervention, SafetyDecision, SafetyLayer, SafetyLimits

__all__ = [
    "DisconnectError",
    "DriverUnavailableError",
    "FaultNotAcknowledged",
    "Intervention",
    "PandaRealEnv",
    "ReflexError",
    "RobotDriver",
    "RobotFault",
    "RobotState",
    "SafetyDecision",
    "SafetyLayer",
    "SafetyLimits",
    "UserStopError",
    "make_driver",
]
