"""``remote:ws://host:port``: a base policy answered by a websocket server (openpi protocol).

:class:`RemoteBase` implements :class:`~residual_bench.policies.base.BasePolicy`. It connects
once to read the server's metadata (the :class:`PolicySpec` and, from ``bench serve``, the env
kwargs and executor settings of the served base), then sends one observation per ``act``.

Failure policy: whatever goes wrong during an episode - the call times out, the server answers
with an error frame, the connection drops, the answer has the wrong shape - ``act`` raises
:class:`~residual_bench.policies.executor.BaseUnavailableError`, which the executor treats as
"no fresh chunk": it holds the last action and counts the failure in the step info
(``base_errors``). A dropped connection is re-opened on a later call with exponential back-off
(calls during the back-off fail at once, so the simulation never waits on a dead server); a
timed-out connection is dropped too, because a late answer would otherwise be read as the
answer to the next observation.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.controller import BaseController
from residual_bench.policies.executor import BaseUnavailableError, ChunkExecutor, LatencyModel
from residual_bench.policies.registry import (
    OCTO_NAME,
    REMOTE_PREFIX,
    BaseEntry,
    register_base_family,
)
from residual_bench.policies.remote import protocol as P
from residual_bench.policies.remote import server_url

API_KEY_ENV = "RESIDUAL_BENCH_API_KEY"
OCTO_URL_ENV = "RESIDUAL_BENCH_OCTO_URL"
OCTO_DEFAULT_URL = "ws://127.0.0.1:8000"
TIMEOUT_ENV = "RESIDUAL_BENCH_REMOTE_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 10.0
MAX_REPLY_BYTES = 16 * 1024 * 1024
"""Largest frame a server may send: an answer is an action chunk and timings (bytes to
kilobytes), the metadata a few kilobytes; a larger frame closes the connection unread."""
SERVER_ENV_KWARGS = frozenset({"obs_mode", "image_size", "control_hz"})
"""The env arguments a server may ask for: what its policy must see. Everything else (the
suite, the scene, object splits, any path) is the local user's to choose."""
# websockets >= 17.1 warns unless a directly-held connection is asked for explicitly; older
# versions do not know the flag.
_LEGACY = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


class RemoteConnectionError(ValueError):
    """The server could not be reached, refused us, or sent no usable metadata."""


def open_connection(
    url: str, api_key: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect and read the metadata message.

    Raises:
        RemoteConnectionError: unreachable, refused (e.g. HTTP 401), or bad metadata.
    """
    headers = {"Authorization": f"Api-Key {api_key}"} if api_key else None
    try:
        ws = connect(
            url,
            additional_headers=headers,
            open_timeout=timeout_s,
            close_timeout=1.0,
            compression=None,
            max_size=MAX_REPLY_BYTES,
            proxy=None,  # a policy server is reached directly, never through an HTTP proxy
            **_LEGACY,
        )
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        raise RemoteConnectionError(f"cannot connect to {url}: {exc}") from None
    try:
        message = ws.recv(timeout=timeout_s)
        if isinstance(message, str):
            raise P.ProtocolError(f"server sent an error instead of metadata: {message}")
        metadata = P.str_keys(P.unpackb(message, MAX_REPLY_BYTES), "metadata")
        P.spec_from_wire(metadata.get("policy_spec", {}))
    except (P.ProtocolError, ConnectionClosed, TimeoutError, OSError) as exc:
        ws.close()
        raise RemoteConnectionError(f"{url}: no usable metadata ({exc})") from None
    return ws, metadata


class RemoteBase:
    """A base policy served elsewhere.

    Args:
        url: ``ws://host:port`` of the server.
        api_key: sent as ``Authorization: Api-Key <key>``; default ``$RESIDUAL_BENCH_API_KEY``.
        timeout_s: per-call limit on the answer (and on connecting).
        backoff_s: first wait before reconnecting after a failure; doubles up to ``max_backoff_s``.
        max_backoff_s: longest wait between reconnection attempts.

    Attributes:
        spec: the served policy's spec (from the metadata).
        metadata: the server's metadata map.
        failures: calls that raised :class:`BaseUnavailableError` since construction.
        round_trips_s: measured round trip of every successful call.

    Raises:
        RemoteConnectionError: the first connection fails.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        backoff_s: float = 0.25,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.url = url
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self.timeout_s = float(timeout_s)
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        self._ws, self.metadata = open_connection(url, self.api_key, self.timeout_s)
        self.spec: PolicySpec = P.spec_from_wire(self.metadata["policy_spec"])
        self.failures = 0
        self.round_trips_s: list[float] = []
        self._wait = self.backoff_s
        self._retry_at = 0.0
        self._episode: tuple[str, int | None] | None = None
        self._needs_reset = False

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def reset(self, instruction: str, seed: int | None) -> None:
        """Start an episode; the server is told before the next observation (on every new
        connection too, so a restarted server starts from a clean history)."""
        self._episode = (instruction, seed)
        self._needs_reset = True

    def act(self, obs: dict, instruction: str) -> ActionChunk:
        """Send the observation (arrays plus ``prompt``) and return the server's chunk.

        Raises:
            BaseUnavailableError: no answer now (timeout, error frame, connection down).
        """
        try:
            ws = self._connection()
            # Plain openpi servers have no reset; ours advertise it in the metadata.
            if self._needs_reset and self._episode is not None and self._has_reset():
                instruction0, seed = self._episode
                self._call(ws, {P.CONTROL_KEY: "reset", "instruction": instruction0, "seed": seed})
                self._needs_reset = False
            request = {k: np.asarray(v) for k, v in obs.items()}
            request[P.PROMPT_KEY] = instruction
            start = time.perf_counter()
            reply = self._call(ws, request)
            round_trip = time.perf_counter() - start
            actions = self._actions(reply)
        except BaseUnavailableError:
            self.failures += 1
            raise
        self._wait = self.backoff_s
        self.round_trips_s.append(round_trip)
        timing = reply.get("server_timing", {})
        info = {
            # What the base cost the robot, from the robot's side of the network.
            "infer_time_s": round_trip,
            "round_trip_s": round_trip,
            "server_timing": timing if isinstance(timing, dict) else {},
        }
        if isinstance(reply.get("info"), dict):
            info["server_info"] = reply["info"]
        return ActionChunk(actions, info)

    # -- internals ------------------------------------------------------------------------

    def _has_reset(self) -> bool:
        controls = self.metadata.get("controls")
        return isinstance(controls, list) and "reset" in controls

    def _connection(self) -> ClientConnection:
        if self._ws is not None:
            return self._ws
        now = time.monotonic()
        if now < self._retry_at:
            raise BaseUnavailableError(
                f"{self.url}: disconnected, reconnecting in {self._retry_at - now:.2f} s"
            )
        try:
            ws, metadata = open_connection(self.url, self.api_key, self.timeout_s)
        except RemoteConnectionError as exc:
            self._back_off()
            raise BaseUnavailableError(str(exc)) from None
        if P.spec_from_wire(metadata["policy_spec"]) != self.spec:
            ws.close()
            self._back_off()
            raise BaseUnavailableError(f"{self.url}: the server now serves another policy")
        self._ws, self.metadata = ws, metadata
        self._needs_reset = True
        return ws

    def _back_off(self) -> None:
        self.close()
        self._retry_at = time.monotonic() + self._wait
        self._wait = min(2 * self._wait, self.max_backoff_s)

    def _call(self, ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
        try:
            ws.send(P.packb(message))
            answer = ws.recv(timeout=self.timeout_s)
        except TimeoutError:
            # The late answer is still coming: drop this connection rather than misread it.
            self._back_off()
            raise BaseUnavailableError(
                f"{self.url}: no answer within {self.timeout_s:g} s"
            ) from None
        except (ConnectionClosed, OSError) as exc:
            self._back_off()
            raise BaseUnavailableError(f"{self.url}: connection lost ({exc})") from None
        if isinstance(answer, str):
            raise BaseUnavailableError(f"{self.url}: server error: {answer.strip()[:500]}")
        try:
            return P.str_keys(P.unpackb(answer, MAX_REPLY_BYTES), "answer")
        except P.ProtocolError as exc:
            raise BaseUnavailableError(f"{self.url}: bad answer ({exc})") from None

    def _actions(self, reply: dict[str, Any]) -> np.ndarray:
        actions = reply.get("actions")
        expected = (self.spec.chunk_len, self.spec.action_dim)
        if not isinstance(actions, np.ndarray) or actions.shape != expected:
            got = getattr(actions, "shape", type(actions).__name__)
            raise BaseUnavailableError(f"{self.url}: answer actions {got}, expected {expected}")
        actions = actions.astype(np.float32)
        if not np.all(np.isfinite(actions)):
            raise BaseUnavailableError(f"{self.url}: answer actions contain NaN or inf")
        return actions


def make_remote_controller(url: str, env: Any, name: str | None = None) -> Any:
    """A :class:`~residual_bench.policies.controller.BaseController` for the server at ``url``.

    The executor is built from the metadata's ``executor`` settings when the server sends them
    (``bench serve`` sends the served base's own), else it plays chunks receding-horizon with
    no simulated latency.
    """
    timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    policy = RemoteBase(url, timeout_s=timeout)
    settings = policy.metadata.get("executor")
    settings = P.str_keys(settings, "executor") if isinstance(settings, dict) else {}
    latency = None
    if settings.get("latency_fixed_s") is not None:
        latency = LatencyModel(
            float(settings["latency_fixed_s"]), float(settings.get("latency_jitter_s") or 0.0)
        )
    executor = ChunkExecutor(
        policy,
        env.unwrapped.dt,
        mode=settings.get("mode", "receding"),
        replan_every=settings.get("replan_every"),
        ensemble_decay=float(settings.get("ensemble_decay", 0.1)),
        latency=latency,
        align=settings.get("align", "observation"),
    )
    controller = BaseController(policy, executor)
    if name is not None:
        controller.name = name
    return controller


def server_env_kwargs(requested: Any, url: str) -> dict[str, Any]:
    """The env arguments taken from a server's metadata: only ``SERVER_ENV_KWARGS``, with
    values of the right kind; the others are dropped with a warning naming them.

    A server is a peer, not the user: it may say what observation its policy needs, never
    which suite, scene or file the local env loads.
    """
    if not isinstance(requested, dict):
        return {}
    requested = P.str_keys(requested, "env_kwargs")
    kinds = {"obs_mode": str, "image_size": int, "control_hz": int}
    taken = {
        key: value
        for key, value in requested.items()
        if key in SERVER_ENV_KWARGS
        and isinstance(value, kinds[key])
        and not isinstance(value, bool)
        and (not isinstance(value, str) or len(value) <= 32)
    }
    dropped = sorted(set(requested) - set(taken))
    if dropped:
        warnings.warn(
            f"{url}: ignored env arguments the server asked for: "
            f"{', '.join(repr(k)[:40] for k in dropped[:8])} (a server may set only "
            f"{', '.join(sorted(SERVER_ENV_KWARGS))}, with values of the right kind)",
            stacklevel=2,
        )
    return taken


def remote_entry(name: str, url: str, description: str | None = None) -> Any:
    """The registry entry of a remote base: reads the metadata now, connects per controller.

    Raises:
        RemoteConnectionError: the server cannot be reached or sends no usable metadata.
    """
    api_key = os.environ.get(API_KEY_ENV)
    ws, metadata = open_connection(url, api_key, float(os.environ.get(TIMEOUT_ENV, 10.0)))
    ws.close()
    spec = P.spec_from_wire(metadata["policy_spec"])
    env_kwargs = server_env_kwargs(metadata.get("env_kwargs"), url)
    if description is None:
        description = f"base: {spec.name} served at {url}"

    def factory(env: Any) -> Any:
        return make_remote_controller(url, env, name)

    return BaseEntry(name, description, factory, env_kwargs)


def remote_family_entry(name: str) -> BaseEntry:
    """``remote:ws://HOST:PORT``: the base served there (its metadata is read now)."""
    return remote_entry(name, server_url(name, REMOTE_PREFIX, ("ws://", "wss://")))


def octo_entry(name: str) -> BaseEntry:
    """``octo``: Octo served by ``scripts/octo_server.py`` at ``$RESIDUAL_BENCH_OCTO_URL``."""
    url = os.environ.get(OCTO_URL_ENV, OCTO_DEFAULT_URL)
    return remote_entry(name, url, f"base: Octo served by scripts/octo_server.py at {url}")


register_base_family(
    REMOTE_PREFIX, remote_family_entry, f"{REMOTE_PREFIX}ws://HOST:PORT", server=True
)
register_base_family(OCTO_NAME, octo_entry, OCTO_NAME)
