"""Serve a base policy over a websocket, speaking openpi's protocol (see :mod:`.protocol`).

:class:`PolicyServer` wraps any :class:`~residual_bench.policies.base.BasePolicy` object;
:func:`serve_base` builds one from the registry. A registered base is built for an env the
server creates with the base's own env kwargs, so it is the very object the in-process base
would be; the observation schema (keys, dtypes, shapes) is read off that env's first
observation and every request must match it exactly. Bases that read the simulator itself
(``scripted``, ``scripted-expert``, ``scripted-fast``: their policy holds the env) are
refused: the server's simulator is not the client's, so they would act on the wrong world.

Every bad request (not msgpack, not a map, missing or unknown keys, wrong dtypes or shapes, an
oversized frame, a policy that raises) is answered with a text frame and the connection, and
the server, keep serving. Calls into the policy are serialised by a lock: one model, any
number of clients (a stateful policy shares its episode state between them, as in openpi).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from http import HTTPStatus
from typing import Any

import gymnasium as gym
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from residual_bench.policies.base import BasePolicy, check_chunk
from residual_bench.policies.registry import get_base
from residual_bench.policies.remote import protocol as P
from residual_bench.registration import ENV_ID  # importing residual_bench registers the env id

log = logging.getLogger(__name__)
_SCALARS = (str, int, float, bool, type(None))
MAX_CONNECTIONS = 16
"""Clients served at once: a GPU serves a few evaluation workers; each connection is a thread."""


def authorized(headers: Any, api_key: str | None) -> bool:
    """Whether a handshake carries the key: openpi's ``Authorization: Api-Key <key>``."""
    if api_key is None:
        return True
    given = headers.get("Authorization", "") or ""
    prefix = "Api-Key "
    token = given[len(prefix) :] if given.startswith(prefix) else ""
    return hmac.compare_digest(token.encode(), api_key.encode())


class PolicyServer:
    """A websocket server for one policy; runs in a background thread.

    Args:
        policy: the policy to serve.
        host: interface to listen on (``127.0.0.1``; ``0.0.0.0`` to serve other machines).
        port: TCP port; 0 picks a free one (see :attr:`port`).
        api_key: when set, handshakes without ``Authorization: Api-Key <key>`` get HTTP 401.
        obs_schema: key -> ``{"dtype": str, "shape": list}`` every observation must match;
            None accepts any map of arrays.
        metadata: extra entries for the metadata message (``policy_spec`` is always sent).
        delay_s: sleep this long before answering each ``infer`` (injected latency).
        max_message_bytes: larger requests are answered with an error frame; beyond twice this
            the websocket layer closes the connection (code 1009) without reading it.
    """

    def __init__(
        self,
        policy: BasePolicy,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        obs_schema: dict[str, dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        delay_s: float = 0.0,
        max_message_bytes: int = P.DEFAULT_MAX_MESSAGE_BYTES,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not isinstance(policy, BasePolicy):
            raise ValueError("policy: must have a spec, reset(instruction, seed) and act(...)")
        if delay_s < 0:
            raise ValueError(f"delay_s: must be >= 0, got {delay_s!r}")
        self.policy = policy
        self.api_key = api_key
        self.obs_schema = obs_schema
        self.delay_s = float(delay_s)
        self.max_message_bytes = int(max_message_bytes)
        self.metadata = {
            "protocol": P.PROTOCOL,
            "protocol_version": P.PROTOCOL_VERSION,
            "server": "residual-bench",
            "controls": ["reset"],
            **(metadata or {}),
            "policy_spec": P.spec_to_wire(policy.spec),
            "obs_schema": obs_schema,
        }
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, int(max_connections)))
        self._server: Server = serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            compression=None,  # camera frames barely compress; deflate only costs time
            max_size=2 * self.max_message_bytes,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port actually listened on."""
        return self._server.socket.getsockname()[1]

    @property
    def url(self) -> str:
        """``ws://host:port`` of this server (the listening address)."""
        host = self._server.socket.getsockname()[0]
        return f"ws://{host}:{self.port}"

    def start(self) -> PolicyServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`shutdown` (or Ctrl-C)."""
        self._server.serve_forever()

    def shutdown(self) -> None:
        """Stop listening and close every connection (clients see code 1001)."""
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # -- one connection --------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        if request.path == P.HEALTH_PATH:
            return connection.respond(HTTPStatus.OK, "OK\n")
        if not authorized(request.headers, self.api_key):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        return None

    def _handle(self, ws: ServerConnection) -> None:
        # Each connection holds a thread: past the cap a peer could exhaust them.
        if not self._slots.acquire(blocking=False):
            ws.close(1013, "too many connections; try again later")
            return
        try:
            ws.send(P.packb(self.metadata))
            for message in ws:
                ws.send(self._answer(message))
        except ConnectionClosed:
            pass  # the client went away; nothing to answer
        finally:
            self._slots.release()

    def _answer(self, message: str | bytes) -> str | bytes:
        """The frame answering one request: binary on success, text on any error."""
        try:
            if isinstance(message, str):
                raise P.ProtocolError("expected a binary msgpack frame, got a text frame")
            request = P.str_keys(P.unpackb(message, self.max_message_bytes), "request")
            if P.CONTROL_KEY in request:
                return P.packb(self._control(request))
            return P.packb(self._infer(request))
        except (ValueError, KeyError, TypeError) as exc:
            return f"error: {exc}"
        except Exception as exc:  # a policy bug must not take the server down for everyone
            log.exception("policy failed")
            return f"internal error: {type(exc).__name__}: {exc}"

    def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        if request[P.CONTROL_KEY] != "reset":
            raise P.ProtocolError(f"unknown control {request[P.CONTROL_KEY]!r}; expected 'reset'")
        instruction, seed = request.get("instruction", ""), request.get("seed")
        if not isinstance(instruction, str):
            raise P.ProtocolError("reset: instruction must be a string")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise P.ProtocolError("reset: seed must be an integer or nil")
        with self._lock:
            self.policy.reset(instruction, seed)
        return {"reset": True}

    def _infer(self, request: dict[str, Any]) -> dict[str, Any]:
        prompt = request.pop(P.PROMPT_KEY, "")
        if not isinstance(prompt, str):
            raise P.ProtocolError(f"{P.PROMPT_KEY!r} must be a string")
        check_observation(request, self.obs_schema)
        start = time.perf_counter()
        with self._lock:
            chunk = self.policy.act(request, prompt)
            check_chunk(self.policy.spec, chunk)
        infer_ms = 1000.0 * (time.perf_counter() - start)
        if self.delay_s:
            time.sleep(self.delay_s)
        info = {k: v for k, v in chunk.info.items() if isinstance(v, _SCALARS)}
        return {"actions": chunk.actions, "server_timing": {"infer_ms": infer_ms}, "info": info}


def check_observation(obs: dict[str, Any], schema: dict[str, dict[str, Any]] | None) -> None:
    """Check an observation map against a schema (None: only that values are arrays).

    Raises:
        ProtocolError: a missing or unknown key, or an array of another dtype or shape.
    """
    if schema is None:
        for key, value in obs.items():
            if not hasattr(value, "dtype"):
                raise P.ProtocolError(f"observation {key!r} must be an array")
        return
    missing = sorted(set(schema) - set(obs))
    unknown = sorted(set(obs) - set(schema))
    if missing or unknown:
        raise P.ProtocolError(
            f"observation keys: missing {missing}, unknown {unknown}; expected "
            f"{sorted(schema)} and {P.PROMPT_KEY!r}"
        )
    for key, want in schema.items():
        value = obs[key]
        dtype, shape = getattr(value, "dtype", None), getattr(value, "shape", None)
        if dtype is None or dtype.str != want["dtype"] or list(shape) != list(want["shape"]):
            got = f"{dtype.str} {list(shape)}" if dtype is not None else type(value).__name__
            raise P.ProtocolError(
                f"observation {key!r}: expected {want['dtype']} {list(want['shape'])}, got {got}"
            )


def executor_settings(executor: Any) -> dict[str, Any]:
    """How a :class:`~residual_bench.policies.executor.ChunkExecutor` runs its base, as a map
    the client rebuilds the same executor from (mode, replanning, simulated latency)."""
    latency = executor.latency
    return {
        "mode": executor.mode,
        "replan_every": executor.replan_every,
        "ensemble_decay": executor.ensemble_decay,
        "align": executor.align,
        "latency_fixed_s": None if latency is None else latency.fixed_s,
        "latency_jitter_s": None if latency is None else latency.jitter_s,
    }


def serve_base(name: str, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> PolicyServer:
    """A (not yet started) server for the registered base ``name``.

    The base is built exactly as in-process, for an env made with its registered env kwargs;
    the metadata also carries those kwargs and the executor settings, so that a
    ``remote:`` client runs the same env and the same executor as the in-process base.

    Args:
        name: a registered base behind the ``BasePolicy`` interface (e.g. ``bc``).
        host: interface to listen on.
        port: TCP port, 0 for a free one.
        **kwargs: passed to :class:`PolicyServer` (``api_key``, ``delay_s``, ...).

    Raises:
        ValueError: an unknown name, a controller without a base policy (the privileged
            scripted presets), or a base that reads the simulator itself.
    """
    entry = get_base(name)
    if ":" in name:
        raise ValueError(f"cannot serve {name!r}: it is itself a client of another server")
    env = gym.make(ENV_ID, **entry.env_kwargs)
    controller = entry.factory(env)
    policy = getattr(controller, "policy", None)
    if policy is None or not hasattr(controller, "executor"):
        raise ValueError(
            f"cannot serve {name!r}: it is a scripted controller, not a BasePolicy; "
            "serve an observation-only base such as bc"
        )
    if getattr(policy, "env", None) is not None:
        raise ValueError(
            f"cannot serve {name!r}: it reads the simulator's internal state, which a server "
            "does not share with its clients; serve an observation-only base such as bc"
        )
    obs, _ = env.reset(seed=0)
    schema = {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in obs.items()}
    metadata = {
        "base": name,
        "env_kwargs": dict(entry.env_kwargs),
        "executor": executor_settings(controller.executor),
        **kwargs.pop("metadata", {}),
    }
    # The env only provided the schema; the policy does not read it.
    env.close()
    return PolicyServer(policy, host, port, obs_schema=schema, metadata=metadata, **kwargs)
