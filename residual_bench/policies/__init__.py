"""Base policies, and the catalog of the shipped ones.

A base is found by name in :mod:`residual_bench.policies.registry`, which imports none of the
policies: each plug-in registers its own names where it is defined, when its module is
imported. This package imports every shipped plug-in, so that whoever imports anything from
it (the registry included: a package runs before its modules) finds every base registered,
and registration flows one way, from the plug-ins to the registry, with no import cycle.
The order of the imports does not matter: ``base_names()`` is sorted, families claim
disjoint names, and the unknown-name error lists them by kind.

Importing the catalog stays light (no torch, no transformers), as ``bench --help`` needs:
the plug-ins that need torch import it only when one of their bases is built.
"""

from residual_bench.policies import (
    bc,  # bc, bc:PATH
    controller,  # zero
    insert_expert,  # noqa: F401  (expert of ResidualInsert)
    openvla,  # openvla, pi0
    push_expert,  # noqa: F401  (expert of ResidualPush)
    scripted,  # expert, expert-open-loop, expert-4hz
    scripted_vla,  # scripted-expert, scripted
    stack_expert,  # noqa: F401  (expert of ResidualStack)
)
from residual_bench.policies.remote import (
    client,  # remote:URL, octo
    openvla_rest,  # openvla-rest:URL
)

__all__ = ["bc", "client", "controller", "openvla", "openvla_rest", "scripted", "scripted_vla"]
