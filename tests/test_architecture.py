"""The package's shape, read from its own imports (``docs/architecture.md`` draws it).

Layers, bottom to top; a module imports only from its own folder or from lower layers, never
sideways between two folders of one layer and never up. Imports inside functions are kept
for optional or heavy dependencies, and in the command-line modules, which defer their work
so that ``bench --help`` stays instant.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import residual_bench

PACKAGE = Path(residual_bench.__file__).parent

LAYERS: tuple[tuple[str, ...], ...] = (
    # Foundation: no simulator, no policy; what every run needs.
    ("seeding", "language", "env_spec", "run_directory", "provenance"),
    ("spaces", "config_fields"),
    ("sim",),
    ("tasks", "perturb"),
    ("env_arguments",),
    ("task_env", "registration", "viz"),
    ("episodes",),
    ("policies",),
    ("training",),
    ("residual", "finetune"),
    ("eval",),
    ("rollout", "protocol", "sweep"),
    ("leaderboard", "real", "training_cli", "benchmark_run"),
    ("cli",),
)  # fmt: skip
"""Folder or top-level module names per layer. The residual agents and the fine-tuning
baselines compete, side by side; what both need (the learning curve, the critic warm-up) is
in ``training``, below them."""

OPTIONAL_OR_HEAVY = {
    "ray", "transformers", "safetensors", "franky", "panda_py", "pyrealsense2", "playwright",
    "websockets", "requests", "fcntl", "msvcrt", "tensorboard", "torch", "scipy", "matplotlib",
    "huggingface_hub", "tokenizers",
}  # fmt: skip
"""Packages a function may import when it needs them (optional extras, a platform module,
or a heavy library that only some commands touch)."""
DEFERRED_HEAVY_MODULES = {
    "policies.bc.model", "policies.openvla.base", "policies.openvla.model", "policies.pi0",
}  # fmt: skip
"""Modules of ours that import torch or transformers at their top: the base catalog imports
them only when such a base is built, so ``bench --help`` and the registry stay light."""
DEFERRED_FOR_OTHER_ENVIRONMENTS = {("policies.remote.protocol", "policies.base")}
"""The wire protocol is loaded by file path in a policy server's own environment (Octo's),
where the package may be absent: it imports the package only when it is there."""
CLI_MODULES = {
    "cli", "training_cli", "leaderboard.cli", "real.cli", "policies.remote.cli", "sweep.cli",
}  # fmt: skip
MAX_LINES = 400
MAX_FOLDER_SHARE = 0.30


def modules() -> dict[str, Path]:
    """Dotted name below the package (``eval.runner``; ``""`` is the package) -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def unit(name: str) -> str:
    """The folder or top-level module a module belongs to (what LAYERS names)."""
    return name.split(".")[0]


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import of a module."""
    tree = ast.parse(path.read_text())
    nested = {
        id(node)
        for func in ast.walk(tree)
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(func)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in nested) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(
                    ["residual_bench", *base, *([node.module] if node.module else [])]
                )
            else:
                target = node.module or ""
            # ``from residual_bench.eval import runner`` imports the module ``runner``.
            submodules = [f"{target}.{alias.name}" for alias in node.names]
            submodules = [m for m in submodules if m.removeprefix("residual_bench.") in known]
            out += [(m, id(node) in nested) for m in submodules or [target]]
    return out


def internal(target: str, known: dict[str, Path]) -> str | None:
    if target != "residual_bench" and not target.startswith("residual_bench."):
        return None
    name = target.removeprefix("residual_bench").removeprefix(".")
    return name if name in known and name else None


def layer_index(name: str) -> int | None:
    """The layer of a module's folder, or None when LAYERS does not name it."""
    return next((i for i, layer in enumerate(LAYERS) if unit(name) in layer), None)


def layer_of(name: str) -> int:
    index = layer_index(name)
    assert index is not None, f"residual_bench.{name} is in no layer of LAYERS: add it"
    return index


def test_every_module_is_in_a_layer():
    outside = sorted({unit(name) for name in modules() if name and layer_index(name) is None})
    assert outside == [], f"folders or modules in no layer of LAYERS: {outside}"


def test_no_module_imports_sideways_or_up_a_layer():
    known = modules()
    wrong = []
    for name, path in known.items():
        if not name:
            continue
        for target, _ in imports(name, path, known):
            other = internal(target, known)
            if other is None or unit(other) == unit(name):
                continue
            if layer_of(other) >= layer_of(name):
                wrong.append(f"{name} -> {other}")
    assert not wrong, "imports sideways or up:\n" + "\n".join(sorted(set(wrong)))


def test_the_module_graph_has_no_cycle():
    known = modules()
    graph = {
        name: {internal(target, known) for target, _ in imports(name, path, known)} - {None, name}
        for name, path in known.items()
    }
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1  # on the current path
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail, node, nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2  # done

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_imports_inside_functions_are_for_optional_or_heavy_packages_or_the_command_line():
    known = modules()
    wrong = []
    for name, path in known.items():
        if name in CLI_MODULES:
            continue
        for target, nested in imports(name, path, known):
            ours = internal(target, known)
            if (
                not nested
                or target.split(".")[0] in OPTIONAL_OR_HEAVY
                or ours in DEFERRED_HEAVY_MODULES
                or (name, ours) in DEFERRED_FOR_OTHER_ENVIRONMENTS
            ):
                continue
            wrong.append(f"{name}: {target}")
    assert not wrong, "imports inside functions:\n" + "\n".join(sorted(set(wrong)))


def test_no_module_is_over_400_lines():
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long


def test_no_folder_holds_more_than_30_percent_of_the_package():
    lines: Counter[str] = Counter()
    for name, path in modules().items():
        lines[unit(name) if name else ""] += len(path.read_text().splitlines())
    total = sum(lines.values())
    share = {folder: n / total for folder, n in lines.items()}
    assert max(share.values()) <= MAX_FOLDER_SHARE, share


def test_only_the_simulator_layer_imports_pybullet():
    """Tasks, perturbations, the env and the real robot's twin ask ``sim/`` for physics."""
    known = modules()
    wrong = [
        name
        for name, path in known.items()
        if unit(name) != "sim" and name  # the package imports it once, to silence its banner
        for target, _ in imports(name, path, known)
        if target.split(".")[0] == "pybullet"
    ]
    assert not wrong
