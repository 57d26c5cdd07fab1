"""A remote base in a whole episode, the registry's remote names and ``bench serve``.

Equivalence: ``bench serve --base bc`` builds the very policy the in-process ``bc`` base uses
and advertises its env kwargs and executor settings, so an episode under
``remote:ws://...`` gives the in-process record - everything but the base's name - when the
network adds nothing but (real) time: the simulated latency model is the same on both sides.
"""

import argparse
import socket

import pytest

from residual_bench.eval.episode_tasks import EpisodeTask
from residual_bench.eval.runner import play
from residual_bench.policies.registry import get_base
from residual_bench.policies.remote.cli import add_serve_parser
from residual_bench.policies.remote.server import serve_base


@pytest.fixture(scope="module")
def bc_server():
    server = serve_base("bc", port=0).start()
    yield server
    server.shutdown()


def test_remote_bc_episode_gives_the_in_process_record(bc_server):
    name = f"remote:{bc_server.url}"
    local = play(EpisodeTask("bc", None, "nominal", "nominal", "heldout", 3)).to_dict()
    remote = play(EpisodeTask(name, None, "nominal", "nominal", "heldout", 3)).to_dict()
    assert remote.pop("base") == name and local.pop("base") == "bc"
    assert remote == local
    assert local["n_steps"] > 100


def test_remote_entry_carries_the_served_bases_env_kwargs_and_executor(make_env, bc_server):
    entry = get_base(f"remote:{bc_server.url}")
    assert entry.env_kwargs == get_base("bc").env_kwargs == {"obs_mode": "rgb", "image_size": 84}
    env = make_env(**entry.env_kwargs)
    remote, local = entry.factory(env), get_base("bc").factory(env)
    for attr in ("mode", "replan_every", "latency", "align", "ensemble_decay"):
        assert getattr(remote.executor, attr) == getattr(local.executor, attr)
    assert remote.policy.spec == local.policy.spec
    remote.policy.close()


@pytest.mark.parametrize("name", ["scripted", "scripted-expert", "expert"])
def test_bases_that_read_the_simulator_are_not_served(name):
    with pytest.raises(ValueError, match="cannot serve"):
        serve_base(name)


def test_unknown_and_malformed_names_list_the_remote_forms(monkeypatch):
    with pytest.raises(ValueError, match="remote:ws://HOST:PORT.*openvla-rest:http://HOST:PORT"):
        get_base("no-such-base")
    with pytest.raises(ValueError, match="expected remote:ws://HOST:PORT"):
        get_base("remote:http://example:1")
    with pytest.raises(ValueError, match="expected openvla-rest:http://HOST:PORT"):
        get_base("openvla-rest:")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    monkeypatch.setenv("RESIDUAL_BENCH_OCTO_URL", f"ws://127.0.0.1:{free}")
    monkeypatch.setenv("RESIDUAL_BENCH_REMOTE_TIMEOUT_S", "1")
    with pytest.raises(ValueError, match=f"cannot connect to ws://127.0.0.1:{free}"):
        get_base("octo")


def test_bench_serve_parser_and_its_user_errors():
    parser = argparse.ArgumentParser(prog="bench")
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--base", "bc", "--port", "0", "--delay", "0.1"])
    assert (args.base, args.port, args.delay, args.host) == ("bc", 0, 0.1, "127.0.0.1")
    with pytest.raises(ValueError, match="unknown base policy"):
        args.func(parser.parse_args(["serve", "--base", "nope"]))
    with pytest.raises(ValueError, match="--delay"):
        args.func(parser.parse_args(["serve", "--base", "bc", "--delay", "-1"]))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        with pytest.raises(ValueError, match="cannot listen on 127.0.0.1"):
            args.func(parser.parse_args(["serve", "--base", "bc", "--port", port]))
