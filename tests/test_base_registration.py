"""Base policies register themselves, one way: each plug-in registers its names where it is
defined, the package imports every shipped plug-in, and the registry imports none of them."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import residual_bench.policies.registry as registry
from residual_bench.policies.registry import BaseEntry, get_base, register_base_family

POLICIES = Path(registry.__file__).parent
SHIPPED = {
    "bc": "residual_bench.policies.bc",
    "expert": "residual_bench.policies.scripted",
    "expert-4hz": "residual_bench.policies.scripted",
    "expert-open-loop": "residual_bench.policies.scripted",
    "openvla": "residual_bench.policies.openvla",
    "pi0": "residual_bench.policies.openvla",
    "scripted": "residual_bench.policies.scripted_vla",
    "scripted-expert": "residual_bench.policies.scripted_vla",
    "scripted-fast": "residual_bench.policies.scripted_vla",
    "zero": "residual_bench.policies.controller",
}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def test_the_registry_module_imports_none_of_its_plug_ins():
    inside = {m for m in imported_modules(POLICIES / "registry.py") if "policies" in m}
    assert inside == set()


def test_every_shipped_base_is_registered_by_importing_the_policies_package():
    code = (
        "import residual_bench.policies.registry as r\n"
        "print(' '.join(r.base_names()))\n"
        "print(' '.join(sorted(r._FAMILIES)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == [
        " ".join(sorted(SHIPPED)),
        "bc: octo openvla-rest: remote:",
    ]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_base_is_registered_by_the_module_that_defines_it(name):
    factory = get_base(name).factory
    assert factory.__module__ == SHIPPED[name]


def test_bases_whose_weights_live_elsewhere_say_so_and_the_others_do_not():
    outside = {name for name in SHIPPED if not get_base(name).self_contained}
    assert outside == {"openvla", "pi0"}


def test_importing_the_catalog_loads_neither_torch_nor_transformers():
    code = (
        "import sys\n"
        "import residual_bench.policies.registry\n"
        "print([m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_family_name_is_resolved_by_its_own_plug_in(monkeypatch, tmp_path):
    seen = []

    def resolve(name: str) -> BaseEntry:
        seen.append(name)
        return BaseEntry(name, f"test base {name}", lambda env: None)

    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    register_base_family("test-family:", resolve, "test-family:ANY")
    assert get_base("test-family:x").description == "test base test-family:x"
    assert seen == ["test-family:x"]
    with pytest.raises(ValueError, match=str(tmp_path / "missing.pt")):
        get_base(f"bc:{tmp_path / 'missing.pt'}")  # resolved by the bc plug-in


def test_a_server_family_checks_its_url_before_contacting_anything():
    with pytest.raises(ValueError, match="expected remote:ws://HOST:PORT"):
        get_base("remote:http://localhost:1")
    with pytest.raises(ValueError, match="expected openvla-rest:http://HOST:PORT"):
        get_base("openvla-rest:ws://localhost:1")


def test_an_unknown_name_lists_every_name_and_every_family():
    with pytest.raises(ValueError) as err:
        get_base("nope")
    assert str(err.value) == (
        "unknown base policy 'nope'; valid choices: "
        f"{', '.join(sorted(SHIPPED))}, octo, bc:PATH (a bc checkpoint), or a server as "
        "remote:ws://HOST:PORT or openvla-rest:http://HOST:PORT"
    )


def test_a_name_or_family_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_base("zero", "again", lambda env: None)
    with pytest.raises(ValueError, match="already registered"):
        register_base_family("octo", lambda name: None, "octo")


def test_no_import_in_the_policies_package_hides_inside_a_function_but_optional_or_heavy_ones():
    allowed = {
        "tokenizers",
        "transformers",
        "huggingface_hub",
        "safetensors.torch",
        "residual_bench.policies.openvla.model",  # transformers
        "residual_bench.policies.bc.model",  # torch
        "residual_bench.policies.openvla.base",  # torch
        "residual_bench.policies.pi0",  # torch
        "residual_bench.policies.base",  # protocol.py is loaded alone by the Octo server
    }
    found = set()
    for path in POLICIES.rglob("*.py"):
        for func in ast.walk(ast.parse(path.read_text())):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(func):
                    if isinstance(node, ast.Import):
                        found |= {alias.name for alias in node.names}
                    elif isinstance(node, ast.ImportFrom):
                        found.add(node.module)
    assert found <= allowed, sorted(found - allowed)
