"""``RemoteBase``: spec from the metadata, measured round trips, timeouts, and a server that
dies mid-episode - the executor holds the last good action and counts every failed call."""

import time

import numpy as np
import pytest

from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.executor import BaseUnavailableError, ChunkExecutor
from residual_bench.policies.remote.client import RemoteBase, RemoteConnectionError
from residual_bench.policies.remote.server import PolicyServer

SPEC = PolicySpec(
    "toy", 20.0, 2, 7, "delta_ee_euler", "absolute_pm1", 0.01, 0.05, {}, True, False, None
)
DT = 0.05


class ToyPolicy:
    spec = SPEC

    def __init__(self):
        self.resets = []

    def reset(self, instruction, seed):
        self.resets.append((instruction, seed))

    def act(self, obs, instruction):
        rows = np.tile(0.1 * obs["x"][:1], (2, 7)) + 0.01 * np.arange(7)
        return ActionChunk(rows.astype(np.float32))


def obs(t):
    return {"x": np.array([np.sin(t), 0.0, 0.0], np.float32)}


def test_spec_and_answers_match_the_in_process_policy():
    with PolicyServer(ToyPolicy(), port=0) as server:
        remote = RemoteBase(server.url)
        assert remote.spec == SPEC
        remote.reset("pick the cube", 7)
        chunk = remote.act(obs(0.3), "pick the cube")
        assert chunk.actions.tobytes() == ToyPolicy().act(obs(0.3), "").actions.tobytes()
        assert server.policy.resets == [("pick the cube", 7)]  # sent with the first call
        assert chunk.info["round_trip_s"] > 0 and "infer_ms" in chunk.info["server_timing"]
        remote.close()


def test_injected_latency_shows_in_the_measured_round_trip():
    with PolicyServer(ToyPolicy(), port=0, delay_s=0.2) as server:
        remote = RemoteBase(server.url)
        chunk = remote.act(obs(0), "")
        assert chunk.info["round_trip_s"] >= 0.2
        assert chunk.info["infer_time_s"] == chunk.info["round_trip_s"]
        assert remote.round_trips_s == [chunk.info["round_trip_s"]]
        remote.close()


def test_a_slow_server_times_out_and_the_connection_is_renewed():
    with PolicyServer(ToyPolicy(), port=0, delay_s=0.6) as server:
        remote = RemoteBase(server.url, timeout_s=0.2, backoff_s=0.1)
        with pytest.raises(BaseUnavailableError, match="no answer within 0.2 s"):
            remote.act(obs(0), "")
        # During the back-off calls fail at once, without touching the network.
        start = time.perf_counter()
        with pytest.raises(BaseUnavailableError, match="reconnecting"):
            remote.act(obs(0), "")
        assert time.perf_counter() - start < 0.1
        assert remote.failures == 2
        server.delay_s = 0.0
        time.sleep(0.15)
        # A fresh connection: the late answer to the timed-out call is never misread.
        chunk = remote.act(obs(1.0), "")
        assert chunk.actions.tobytes() == ToyPolicy().act(obs(1.0), "").actions.tobytes()
        remote.close()


def test_an_error_frame_is_a_failed_call_not_a_crash():
    class Flaky(ToyPolicy):
        def act(self, obs, instruction):
            if obs["x"][0] < 0:
                raise ValueError("negative x")
            return super().act(obs, instruction)

    with PolicyServer(Flaky(), port=0) as server:
        remote = RemoteBase(server.url)
        with pytest.raises(BaseUnavailableError, match="server error: error: negative x"):
            remote.act({"x": np.array([-1, 0, 0], np.float32)}, "")
        assert remote.act(obs(0.5), "").actions.shape == (2, 7)  # same connection serves on
        remote.close()


def test_unreachable_server_is_a_one_line_value_error():
    with PolicyServer(ToyPolicy(), port=0) as server:
        url = server.url
    with pytest.raises(RemoteConnectionError, match="cannot connect"):
        RemoteBase(url, timeout_s=1.0)
    assert issubclass(RemoteConnectionError, ValueError)


def test_server_killed_mid_episode_holds_the_last_action_counts_failures_and_recovers():
    server = PolicyServer(ToyPolicy(), port=0).start()
    port = server.port
    remote = RemoteBase(server.url, timeout_s=1.0, backoff_s=0.2, max_backoff_s=0.2)
    executor = ChunkExecutor(remote, DT, mode="receding")
    executor.reset("pick", 0)
    infos, actions = [], []
    for n in range(12):
        if n == 5:
            server.shutdown()  # killed: its connections close with 1001
        action, info = executor.step(obs(0.1 * n), n * DT)
        actions.append(action)
        infos.append(info)
    assert [i["base_fresh"] for i in infos[:5]] == [True] * 5
    assert not any(i["base_fresh"] for i in infos[5:])
    # Step 5 still plays row 1 of the chunk that arrived at step 4; then the executor holds.
    assert not infos[5]["base_held"] and all(i["base_held"] for i in infos[6:])
    for a in actions[6:]:
        np.testing.assert_array_equal(a, actions[5])  # the last known good action
    assert [i["base_errors"] for i in infos[5:]] == list(range(1, 8))
    assert infos[5]["base_error"] and "connection lost" in infos[5]["base_error"]
    assert infos[6]["base_error"] and "reconnecting" in infos[6]["base_error"]
    assert infos[-1]["base_calls"] == 5
    # The server comes back on the same port: after the back-off, fresh chunks again.
    revived = PolicyServer(ToyPolicy(), port=port).start()
    try:
        time.sleep(0.25)
        action, info = executor.step(obs(2.0), 12 * DT)
        assert info["base_fresh"] and info["base_error"] is None and info["base_errors"] == 7
        assert revived.policy.resets == [("pick", 0)]  # the new server starts a clean episode
    finally:
        remote.close()
        revived.shutdown()
