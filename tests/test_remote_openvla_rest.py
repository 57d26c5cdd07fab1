"""``openvla-rest:``: the client of OpenVLA's upstream REST server, against a local emulation
of ``vla-scripts/deploy.py`` (json-numpy ``POST /act``, the string "error" with HTTP 200)."""

import base64
import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from residual_bench.policies.executor import BaseUnavailableError, ChunkExecutor
from residual_bench.policies.registry import get_base
from residual_bench.policies.remote.openvla_rest import OpenVLARestBase, dumps, loads

ACTION = np.array([0.01, -0.02, 0.003, 0.1, -0.2, 0.3, 1.0], np.float64)


def upstream_loads(text):
    """json_numpy's object hook, written from its documented format (not our decoder)."""

    def hook(d):
        if "__numpy__" in d:
            a = np.frombuffer(base64.b64decode(d["__numpy__"]), np.dtype(d["dtype"]))
            return a.reshape(d["shape"]) if d["shape"] else a[0]
        return d

    return json.loads(text, object_hook=hook)


class Upstream(BaseHTTPRequestHandler):
    """deploy.py's behaviour: decode, check, answer the action or the string "error"."""

    requests: list = []
    mode = "ok"

    def do_POST(self):  # noqa: N802  (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            payload = upstream_loads(body)
            if "encoded" in payload:
                payload = upstream_loads(payload["encoded"])
            image, instruction = payload["image"], payload["instruction"]
            assert image.dtype == np.uint8 and image.ndim == 3 and isinstance(instruction, str)
            assert self.path == "/act" and self.mode != "fail"
            Upstream.requests.append(payload)
            answer = dumps(ACTION)
            if self.mode == "double":
                answer = json.dumps(answer)
            if self.mode == "huge":  # far longer than any answer of one action
                answer = json.dumps("x" * 200_000)
        except Exception:
            answer = json.dumps("error")
        data = answer.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_upstream(mode: str = "ok"):
    """The emulated deploy.py on a free local port; yields its URL."""
    Upstream.requests, Upstream.mode = [], mode
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def upstream():
    with serve_upstream() as url:
        yield url


IMAGE = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)


def test_json_numpy_round_trips_bit_exactly():
    for a in (IMAGE, ACTION, np.zeros((0, 2), np.int64), np.array([True, False])):
        b = loads(dumps({"a": a}))["a"]
        assert b.dtype == a.dtype and b.shape == a.shape and b.tobytes() == a.tobytes()
    assert loads(dumps(np.float32(2.5))) == np.float32(2.5)
    with pytest.raises(ValueError, match="plain number"):
        loads(json.dumps({"__numpy__": "", "dtype": "|O", "shape": [0]}))


@pytest.mark.parametrize("mode", ["ok", "double"])
def test_the_action_comes_back_as_a_chunk_of_one(upstream, mode):
    Upstream.mode = mode
    base = OpenVLARestBase(upstream, unnorm_key="bridge_orig")
    chunk = base.act({"rgb": IMAGE}, "put the carrot on the plate")
    np.testing.assert_array_equal(chunk.actions, ACTION[None].astype(np.float32))
    sent = Upstream.requests[0]
    assert sent["image"].tobytes() == IMAGE.tobytes() and sent["unnorm_key"] == "bridge_orig"
    assert sent["instruction"] == "put the carrot on the plate"
    assert chunk.info["round_trip_s"] > 0
    assert base.spec.gripper == "absolute_01" and base.spec.chunk_len == 1


def test_the_error_answer_and_a_dead_server_are_failed_calls(upstream):
    base = OpenVLARestBase(upstream, timeout_s=2.0)
    Upstream.mode = "fail"
    with pytest.raises(BaseUnavailableError, match="answered 'error'"):
        base.act({"rgb": IMAGE}, "pick")
    dead = OpenVLARestBase("http://127.0.0.1:9", timeout_s=1.0)
    with pytest.raises(BaseUnavailableError):
        dead.act({"rgb": IMAGE}, "pick")
    assert base.failures == dead.failures == 1


def test_the_executor_holds_while_upstream_answers_error(upstream):
    base = OpenVLARestBase(upstream)
    executor = ChunkExecutor(base, 0.05)
    executor.reset("pick", 0)
    infos = [executor.step({"rgb": IMAGE}, n * 0.05)[1] for n in range(4)]
    Upstream.mode = "fail"
    later = [executor.step({"rgb": IMAGE}, n * 0.05) for n in range(4, 12)]
    assert infos[0]["base_fresh"] and [i["base_errors"] for i in infos] == [0] * 4
    assert all(i["base_held"] for _, i in later)
    assert later[-1][1]["base_errors"] == 2  # one request per 5 Hz period, both refused
    np.testing.assert_array_equal(later[-1][0], later[0][0])


def test_registry_name_builds_the_controller(make_env, upstream):
    entry = get_base(f"openvla-rest:{upstream}")
    assert entry.env_kwargs == {"obs_mode": "rgb", "image_size": 224}
    controller = entry.factory(make_env(**entry.env_kwargs))
    assert controller.policy.url == f"{upstream}/act"
