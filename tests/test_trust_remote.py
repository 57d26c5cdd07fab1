"""A remote policy server is a peer, not the user: bounded frames, and no say over local files.

A server could send a frame of gigabytes, or ask the client's env to load a suite, a scene
override or a ``scene_spec`` path of its choosing through its metadata. Frames over
``MAX_REPLY_BYTES`` are refused unread, and only ``SERVER_ENV_KWARGS`` (what the served
policy must observe) are taken from a server. A server, in turn, serves at most
``max_connections`` clients at once: each connection holds a thread.
"""

import time

import pytest
from test_remote_client import SPEC, ToyPolicy, obs
from test_remote_openvla_rest import IMAGE, serve_upstream

from residual_bench.policies.executor import BaseUnavailableError
from residual_bench.policies.remote import client as client_module
from residual_bench.policies.remote.client import (
    SERVER_ENV_KWARGS,
    RemoteBase,
    RemoteConnectionError,
    remote_entry,
)
from residual_bench.policies.remote.openvla_rest import MAX_ANSWER_BYTES, OpenVLARestBase
from residual_bench.policies.remote.server import PolicyServer


class Flooding(ToyPolicy):
    """Answers with a chunk far larger than any action chunk."""

    def act(self, o, instruction):
        chunk = super().act(o, instruction)
        chunk.info["padding"] = "x" * (3 * 1024 * 1024)
        return chunk


@pytest.fixture
def small_cap(monkeypatch):
    monkeypatch.setattr(client_module, "MAX_REPLY_BYTES", 1024 * 1024)


def test_an_answer_over_the_frame_cap_is_refused_as_a_failed_call(small_cap):
    with PolicyServer(Flooding(), port=0) as server:
        remote = RemoteBase(server.url, timeout_s=5.0)
        with pytest.raises(BaseUnavailableError, match="message too big|exceeds the limit"):
            remote.act(obs(0.0), "pick")


def test_metadata_over_the_frame_cap_is_refused_at_connect(small_cap):
    padding = {"notes": "x" * (2 * 1024 * 1024)}
    with PolicyServer(ToyPolicy(), port=0, metadata=padding) as server:
        with pytest.raises(RemoteConnectionError, match="message too big|exceeds the limit"):
            RemoteBase(server.url, timeout_s=5.0)


def test_the_client_accepts_only_the_allow_listed_env_arguments_from_a_server(tmp_path):
    hostile = {
        "obs_mode": "rgb",
        "image_size": 64,
        "suite": "mixed-hard",
        "scene_overrides": {"task": {"episode_seconds": 1.0}},
        "scene_spec": str(tmp_path / "planted.yaml"),
        "objects": "train",
    }
    with PolicyServer(ToyPolicy(), port=0, metadata={"env_kwargs": hostile}) as server:
        with pytest.warns(UserWarning, match="ignored env arguments") as caught:
            entry = remote_entry("remote:test", server.url)
    assert entry.env_kwargs == {"obs_mode": "rgb", "image_size": 64}
    assert set(entry.env_kwargs) <= SERVER_ENV_KWARGS
    for key in ("scene_spec", "scene_overrides", "suite", "objects"):
        assert key in str(caught[0].message)


def test_an_allow_listed_argument_of_the_wrong_kind_is_dropped_too():
    metadata = {"env_kwargs": {"obs_mode": ["rgb"], "image_size": True, "control_hz": 20}}
    with PolicyServer(ToyPolicy(), port=0, metadata=metadata) as server:
        with pytest.warns(UserWarning, match="obs_mode"):
            entry = remote_entry("remote:test", server.url)
    assert entry.env_kwargs == {"control_hz": 20}


def test_an_honest_server_still_works():
    with PolicyServer(ToyPolicy(), port=0) as server:
        remote = RemoteBase(server.url)
        assert remote.spec == SPEC
        assert remote.act(obs(0.5), "pick").actions.shape == (2, 7)


def test_an_openvla_rest_answer_longer_than_the_cap_is_never_read_whole():
    with serve_upstream("huge") as url:
        base = OpenVLARestBase(url, timeout_s=5.0)
        with pytest.raises(BaseUnavailableError, match=f"longer than {MAX_ANSWER_BYTES} bytes"):
            base.act({"rgb": IMAGE}, "pick")


def test_a_server_refuses_connections_past_its_cap_and_serves_the_others():
    with PolicyServer(ToyPolicy(), port=0, max_connections=1) as server:
        first = RemoteBase(server.url)
        with pytest.raises(RemoteConnectionError, match="too many connections|no usable"):
            RemoteBase(server.url, timeout_s=5.0)
        assert first.act(obs(0.5), "pick").actions.shape == (2, 7)
        first.close()
        assert connect_when_free(server.url).spec == SPEC  # a freed slot serves the next one


def connect_when_free(url: str, attempts: int = 100) -> RemoteBase:
    """The server frees a slot once its handler sees the close: poll briefly for it."""
    for _ in range(attempts):
        try:
            return RemoteBase(url, timeout_s=5.0)
        except RemoteConnectionError:
            time.sleep(0.02)
    raise AssertionError("the freed connection slot was never reused")
