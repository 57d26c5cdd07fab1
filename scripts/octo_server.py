#!/usr/bin/env python
"""Serve Octo over residual-bench's websocket protocol (openpi's), from Octo's own environment.

Octo pins old JAX / TensorFlow / numpy 1.x and cannot share the benchmark's environment, so it
runs here, on the GPU machine, and ``bench ... --base octo`` connects to it. This script needs
Octo's environment plus ``websockets`` and ``msgpack``; it does *not* need residual-bench
installed: it loads ``protocol.py`` and ``octo_processing.py`` by file path from the checkout it
sits in (both import only numpy and msgpack). See docs/remote_policies.md for the commands.

    python scripts/octo_server.py --model hf://rail-berkeley/octo-small-1.5 --port 8000

Per episode the client sends a reset (instruction, seed), then one observation per call:
``{"rgb": (H, W, 3) uint8, "prompt": str}``. The server resizes the image to 256 px, keeps a
window of 2 observations with Octo's pad mask, samples a chunk and un-normalises it with the
dataset statistics (``--normalization normal|bounds``), answering 4 actions of 7.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np

_SRC = Path(__file__).resolve().parents[1] / "residual_bench" / "policies" / "remote"


def _load(name: str) -> Any:
    # By path, not by package: importing residual_bench would pull in pybullet and gymnasium.
    spec = importlib.util.spec_from_file_location(f"_residual_bench_{name}", _SRC / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


P = _load("protocol")
processing = _load("octo_processing")


def tf_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Octo's own resize (TensorFlow lanczos3, antialiased); identity at the right size."""
    if image.shape[:2] == (size, size):
        return image.copy()
    import tensorflow as tf

    out = tf.image.resize(image, (size, size), method="lanczos3", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8).numpy()


def jax_rngs(seed: int) -> Any:
    """An endless stream of JAX PRNG keys from ``seed``."""
    import jax

    key = jax.random.PRNGKey(seed)
    while True:
        key, sub = jax.random.split(key)
        yield sub


class OctoPolicy:
    """Octo with its episode state: task embedding, observation window, sampling keys."""

    def __init__(
        self,
        model: Any,
        stats: dict[str, Any],
        normalization: str = "normal",
        window: int = processing.WINDOW,
        resize: Any = tf_resize,
        rngs: Any = jax_rngs,
    ) -> None:
        self.model, self.stats, self.normalization = model, stats, normalization
        self.history = processing.ObservationHistory(window)
        self.resize, self.rngs = resize, rngs
        self._instruction: str | None = None
        self._task: Any = None
        self._keys = rngs(0)

    def reset(self, instruction: str, seed: int | None) -> None:
        self.history.reset()
        self._keys = self.rngs(0 if seed is None else seed)
        self._set_task(instruction)

    def _set_task(self, instruction: str) -> None:
        if instruction != self._instruction:
            self._task = self.model.create_tasks(texts=[instruction])
            self._instruction = instruction

    def infer(self, rgb: np.ndarray, prompt: str) -> np.ndarray:
        self._set_task(prompt)
        stacked = self.history.push({"image_primary": self.resize(rgb, processing.IMAGE_SIZE)})
        obs = {k: v[None] for k, v in stacked.items()}  # batch of one
        raw = self.model.sample_actions(obs, self._task, rng=next(self._keys))
        return processing.postprocess_actions(np.asarray(raw), self.stats, self.normalization)


class OctoServer:
    """The websocket loop: metadata first, then observation -> chunk, errors as text frames."""

    def __init__(self, policy: OctoPolicy, api_key: str | None = None) -> None:
        self.policy, self.api_key = policy, api_key
        self.lock = threading.Lock()
        self.metadata = {
            "protocol": P.PROTOCOL,
            "protocol_version": P.PROTOCOL_VERSION,
            "server": "octo_server.py",
            "controls": ["reset"],
            "policy_spec": processing.octo_spec_wire(),
            "env_kwargs": {"obs_mode": "rgb", "image_size": processing.IMAGE_SIZE},
            "executor": {"mode": "receding", "replan_every": 1},
        }

    def process_request(self, connection: Any, request: Any) -> Any:
        if request.path == P.HEALTH_PATH:
            return connection.respond(HTTPStatus.OK, "OK\n")
        token = request.headers.get("Authorization", "") or ""
        if self.api_key is not None and token != f"Api-Key {self.api_key}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong API key\n")
        return None

    def handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            ws.send(P.packb(self.metadata))
            for message in ws:
                ws.send(self.answer(message))
        except ConnectionClosed:
            pass

    def answer(self, message: Any) -> Any:
        try:
            if isinstance(message, str):
                raise P.ProtocolError("expected a binary msgpack frame, got a text frame")
            request = P.str_keys(P.unpackb(message, P.DEFAULT_MAX_MESSAGE_BYTES), "request")
            with self.lock:
                if request.get(P.CONTROL_KEY) == "reset":
                    self.policy.reset(str(request.get("instruction", "")), request.get("seed"))
                    return P.packb({"reset": True})
                rgb, prompt = request.get("rgb"), request.get(P.PROMPT_KEY)
                if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
                    raise P.ProtocolError("observation 'rgb' must be an (H, W, 3) uint8 array")
                if not isinstance(prompt, str):
                    raise P.ProtocolError(f"{P.PROMPT_KEY!r} must be a string")
                start = time.perf_counter()
                actions = self.policy.infer(rgb, prompt)
            timing = {"infer_ms": 1000.0 * (time.perf_counter() - start)}
            return P.packb({"actions": actions, "server_timing": timing})
        except Exception as exc:  # every failure is one text frame; the server keeps serving
            return f"error: {type(exc).__name__}: {exc}"


def make_server(octo: OctoServer, host: str, port: int) -> Any:
    """A websockets sync server for ``octo`` (call ``serve_forever``)."""
    from websockets.sync.server import serve

    return serve(
        octo.handle,
        host,
        port,
        process_request=octo.process_request,
        compression=None,
        max_size=2 * P.DEFAULT_MAX_MESSAGE_BYTES,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf://rail-berkeley/octo-small-1.5")
    parser.add_argument("--dataset-key", default="bridge_dataset", help="statistics to use")
    parser.add_argument("--normalization", default="normal", choices=["normal", "bounds"])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=None, help="require Authorization: Api-Key KEY")
    args = parser.parse_args(argv)
    from octo.model.octo_model import OctoModel  # only here: the rest runs without Octo

    model = OctoModel.load_pretrained(args.model)
    stats = model.dataset_statistics[args.dataset_key]["action"]
    octo = OctoServer(OctoPolicy(model, stats, args.normalization), api_key=args.api_key)
    server = make_server(octo, args.host, args.port)
    print(f"serving Octo ({args.model}) on ws://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
