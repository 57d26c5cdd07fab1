"""``PolicyServer``: metadata first, chunks for good requests, a text error frame for every bad
one - while other clients keep being served - and an optional API key."""

import threading
import urllib.request

import msgpack
import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.remote import protocol as P
from residual_bench.policies.remote.client import _LEGACY as LEGACY
from residual_bench.policies.remote.server import PolicyServer

SPEC = PolicySpec(
    "toy", 20.0, 2, 7, "delta_ee_euler", "absolute_pm1", 0.01, 0.05, {}, True, False, None
)
SCHEMA = {"x": {"dtype": "<f4", "shape": [3]}}


class ToyPolicy:
    """Answers rows ``0.01 * arange(14) + x[0]``; counts resets."""

    spec = SPEC

    def __init__(self):
        self.resets = []

    def reset(self, instruction, seed):
        self.resets.append((instruction, seed))

    def act(self, obs, instruction):
        rows = (0.01 * np.arange(14) + obs["x"][0]).reshape(2, 7)
        return ActionChunk(rows.astype(np.float32), {"prompt_len": len(instruction)})


@pytest.fixture
def server():
    with PolicyServer(ToyPolicy(), port=0, obs_schema=SCHEMA, max_message_bytes=4096) as s:
        yield s


def session(url, **kwargs):
    ws = connect(url, proxy=None, open_timeout=5, **LEGACY, **kwargs)
    return ws, P.unpackb(ws.recv(timeout=5))


def infer(ws, message):
    ws.send(message if isinstance(message, bytes | str) else P.packb(message))
    answer = ws.recv(timeout=5)
    return answer if isinstance(answer, str) else P.unpackb(answer)


GOOD = {"x": np.array([0.5, 0, 0], np.float32), "prompt": "pick"}


def test_metadata_comes_first_and_infer_answers_openpi_style(server):
    ws, meta = session(server.url)
    assert meta["policy_spec"] == P.spec_to_wire(SPEC) and meta["obs_schema"] == SCHEMA
    assert "reset" in meta["controls"]
    answer = infer(ws, GOOD)
    np.testing.assert_array_equal(answer["actions"], ToyPolicy().act(GOOD, "").actions)
    assert answer["server_timing"]["infer_ms"] >= 0 and answer["info"] == {"prompt_len": 4}
    assert infer(ws, {"__control__": "reset", "instruction": "go", "seed": 3}) == {"reset": True}
    assert server.policy.resets == [("go", 3)]
    ws.close()


BAD = {
    "malformed-msgpack": (b"\xc1\x00", "malformed msgpack"),
    "text-frame": ("hello", "text frame"),
    "not-a-map": (P.packb([1, 2]), "must be a map"),
    "missing-key": (P.packb({"prompt": "pick"}), "missing \\['x'\\]"),
    "unknown-key": (P.packb(GOOD | {"y": np.zeros(1)}), "unknown \\['y'\\]"),
    "wrong-dtype": (P.packb(GOOD | {"x": np.zeros(3)}), "expected <f4 \\[3\\], got <f8"),
    "wrong-shape": (P.packb(GOOD | {"x": np.zeros(4, np.float32)}), "got <f4 \\[4\\]"),
    "not-an-array": (P.packb(GOOD | {"x": [1.0, 2.0, 3.0]}), "got list"),
    "prompt-type": (P.packb(GOOD | {"prompt": 3}), "'prompt' must be a string"),
    "bad-control": (P.packb({"__control__": "explode"}), "unknown control"),
    "oversized": (P.packb(GOOD | {"pad": np.zeros(5000, np.uint8)}), "exceeds the limit"),
    "object-dtype": (
        msgpack.packb({"x": {"__ndarray__": True, "data": b"", "dtype": "|O", "shape": [0]}}),
        "not allowed",
    ),
}


@pytest.mark.parametrize("message, match", BAD.values(), ids=BAD.keys())
def test_bad_requests_get_an_error_frame_and_everyone_keeps_being_served(server, message, match):
    bad, _ = session(server.url)
    other, _ = session(server.url)
    error = infer(bad, message)
    assert isinstance(error, str) and error.startswith("error:")
    assert __import__("re").search(match, error), error
    # The same connection and another client are still served.
    assert isinstance(infer(bad, GOOD), dict)
    assert isinstance(infer(other, GOOD), dict)
    bad.close()
    other.close()


def test_a_failing_policy_is_an_error_frame_not_a_dead_server():
    class Broken(ToyPolicy):
        def act(self, obs, instruction):
            raise RuntimeError("cuda out of memory")

    with PolicyServer(Broken(), port=0) as s:
        ws, _ = session(s.url)
        assert infer(ws, GOOD).startswith("internal error: RuntimeError: cuda out of memory")
        assert infer(ws, {"__control__": "reset"}) == {"reset": True}


def test_concurrent_clients_are_all_answered(server):
    results = []

    def client(i):
        ws, _ = session(server.url)
        for _ in range(5):
            x = np.array([i, 0, 0], np.float32)
            results.append(infer(ws, {"x": x, "prompt": ""})["actions"][0, 0] == i)
        ws.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == [True] * 20


def test_api_key_is_required_when_set_and_health_check_stays_open():
    with PolicyServer(ToyPolicy(), port=0, api_key="s3cret") as s:
        with pytest.raises(InvalidStatus, match="401"):
            session(s.url)
        with pytest.raises(InvalidStatus, match="401"):
            session(s.url, additional_headers={"Authorization": "Api-Key wrong"})
        ws, meta = session(s.url, additional_headers={"Authorization": "Api-Key s3cret"})
        assert meta["policy_spec"]["name"] == "toy"
        ws.close()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        http = s.url.replace("ws://", "http://") + P.HEALTH_PATH
        with opener.open(http, timeout=5) as response:
            assert response.status == 200 and response.read() == b"OK\n"
