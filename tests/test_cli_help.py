"""``bench --help`` and every subcommand's help stand alone, and load no heavy library.

A user's first command is ``bench --help``: it imports neither torch, scipy's statistics,
stable-baselines3, pandas nor matplotlib (torch and scipy.stats alone took over a second).
Each subcommand's page says what the command does, and the names a user can give are listed
where they are asked for.
"""

import subprocess
import sys

import pytest

from residual_bench.cli import build_parser, main
from residual_bench.finetune.config import finetune_names
from residual_bench.residual.config import config_names

HEAVY = ("torch", "scipy.stats", "stable_baselines3", "transformers", "pandas", "matplotlib")


def test_bench_help_loads_no_heavy_library():
    code = (
        "import sys\n"
        "from residual_bench.cli import build_parser\n"
        "build_parser().format_help()\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def subcommands():
    parser = build_parser()
    (action,) = parser._subparsers._group_actions
    return action.choices


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_subcommand_page_says_what_the_command_does(name):
    assert subcommands()[name].description, f"bench {name} --help has no description"


def test_train_help_names_every_shipped_config():
    text = subcommands()["train"].format_help()
    for name in [*config_names(), *finetune_names()]:
        assert name in text


def test_bench_list_names_configs_feature_modes_and_base_forms(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*config_names(), *finetune_names(), "privileged", "global", "proprio"]:
        assert name in out
    for form in ("bc:PATH", "remote:ws://", "openvla-rest:http://"):
        assert form in out
