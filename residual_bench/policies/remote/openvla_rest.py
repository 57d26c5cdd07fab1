"""``openvla-rest:http://host:port``: OpenVLA's own REST server (``vla-scripts/deploy.py``).

Upstream serves ``POST /act`` with a JSON body whose numpy arrays are encoded by
``json_numpy`` (``{"__numpy__": base64 of the raw bytes, "dtype": "<f4", "shape": [...]}``):
``{"image": (H, W, 3) uint8, "instruction": str, "unnorm_key": str}``. It answers the 7-D
action, json-numpy encoded (or, when the request was "double encoded" as
``{"encoded": "<json text>"}``, the same as a JSON string), and on any failure the JSON string
``"error"`` with HTTP status 200. This client speaks that format with numpy and the standard
library only; each answer is one native action (chunk length 1) at OpenVLA's 5 Hz, gripper in
[0, 1] with 1 = open, translation in metres and rotation in radians (after un-normalisation).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from residual_bench.policies.base import ActionChunk
from residual_bench.policies.controller import BaseController
from residual_bench.policies.executor import BaseUnavailableError, ChunkExecutor
from residual_bench.policies.openvla.spec import openvla_spec
from residual_bench.policies.registry import OPENVLA_REST_PREFIX, BaseEntry, register_base_family
from residual_bench.policies.remote import server_url

UNNORM_KEY_ENV = "RESIDUAL_BENCH_OPENVLA_UNNORM_KEY"
DEFAULT_UNNORM_KEY = "bridge_orig"
MAX_ANSWER_BYTES = 64 * 1024
"""An answer is one 7-vector in JSON (about 200 bytes); nothing longer is read."""
IMAGE_SIZE = 224  # the processor resizes to 224 anyway; sending 224 keeps requests small


def json_numpy_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` hook writing numpy arrays and scalars as json_numpy does."""
    if isinstance(obj, np.ndarray | np.generic):
        return {
            "__numpy__": base64.b64encode(np.ascontiguousarray(obj).tobytes()).decode("ascii"),
            "dtype": obj.dtype.str,
            "shape": list(obj.shape),
        }
    raise TypeError(f"cannot encode a {type(obj).__name__} as JSON")


def json_numpy_hook(obj: dict) -> Any:
    """``json.loads(object_hook=...)`` hook reading json_numpy arrays (plain numbers only)."""
    if "__numpy__" not in obj:
        return obj
    dtype = np.dtype(obj["dtype"])
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise ValueError(f"json-numpy dtype {obj['dtype']!r} is not a plain number type")
    array = np.frombuffer(base64.b64decode(obj["__numpy__"]), dtype=dtype)
    shape = obj["shape"]
    # json_numpy writes scalars with shape []: they decode to a 0-d value, as upstream does.
    return array.reshape(shape).copy() if shape else array[0]


def dumps(obj: Any) -> str:
    """JSON text with json_numpy-encoded arrays."""
    return json.dumps(obj, default=json_numpy_default)


def loads(text: str | bytes) -> Any:
    """Parse JSON text with json_numpy-encoded arrays."""
    return json.loads(text, object_hook=json_numpy_hook)


class OpenVLARestBase:
    """OpenVLA behind its upstream REST server, as a :class:`BasePolicy`.

    Args:
        url: ``http://host:port`` of ``deploy.py`` (``/act`` is appended).
        unnorm_key: dataset statistics to un-normalise with (``bridge_orig``).
        timeout_s: per-call limit.
        image_key: the observation key holding the (H, W, 3) uint8 camera image.
    """

    def __init__(
        self,
        url: str,
        unnorm_key: str = DEFAULT_UNNORM_KEY,
        timeout_s: float = 10.0,
        image_key: str = "rgb",
    ) -> None:
        self.url = url.rstrip("/") + "/act"
        self.unnorm_key = unnorm_key
        self.timeout_s = float(timeout_s)
        self.image_key = image_key
        self.failures = 0
        self.spec = openvla_spec(
            "openvla", image_key, IMAGE_SIZE, unnorm_key, "OpenVLA via its REST server (POST /act)"
        )
        # A policy server is reached directly: ignore any HTTP proxy in the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def reset(self, instruction: str, seed: int | None) -> None:
        """Nothing to reset: OpenVLA is stateless and greedy."""

    def act(self, obs: dict, instruction: str) -> ActionChunk:
        """POST the image and instruction; one action, float32 (1, 7).

        Raises:
            BaseUnavailableError: HTTP or network failure, timeout, the ``"error"`` answer, or
                an answer that is not a finite 7-vector.
        """
        image = np.asarray(obs[self.image_key])
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"openvla-rest: {self.image_key!r} must be (H, W, 3) uint8")
        body = dumps({"image": image, "instruction": instruction, "unnorm_key": self.unnorm_key})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        start = time.perf_counter()
        try:
            try:
                with self._opener.open(request, timeout=self.timeout_s) as response:
                    raw = response.read(MAX_ANSWER_BYTES + 1)
                if len(raw) > MAX_ANSWER_BYTES:
                    raise BaseUnavailableError(
                        f"{self.url}: answer longer than {MAX_ANSWER_BYTES} bytes"
                    )
                answer = loads(raw)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                raise BaseUnavailableError(f"{self.url}: {exc}") from None
            except ValueError as exc:
                raise BaseUnavailableError(f"{self.url}: answer is not JSON ({exc})") from None
            round_trip = time.perf_counter() - start
            action = self._action(answer)
        except BaseUnavailableError:
            self.failures += 1
            raise
        info = {"infer_time_s": round_trip, "round_trip_s": round_trip}
        return ActionChunk(action[None].astype(np.float32), info)

    def _action(self, answer: Any) -> np.ndarray:
        if isinstance(answer, str) and answer == "error":
            raise BaseUnavailableError(f"{self.url}: the server answered 'error' (see its log)")
        if isinstance(answer, str):  # a double-encoded answer: json_numpy text in a string
            try:
                answer = loads(answer)
            except ValueError:
                raise BaseUnavailableError(
                    f"{self.url}: unexpected answer {answer[:80]!r}"
                ) from None
        action = np.asarray(answer, dtype=np.float64) if isinstance(answer, list) else answer
        if not isinstance(action, np.ndarray) or action.shape != (7,):
            got = getattr(action, "shape", type(action).__name__)
            raise BaseUnavailableError(f"{self.url}: expected a 7-D action, got {got}")
        if not np.all(np.isfinite(action)):
            raise BaseUnavailableError(f"{self.url}: action contains NaN or inf")
        return action


def openvla_rest_entry(name: str, url: str) -> Any:
    """The registry entry of ``openvla-rest:URL``: a 224 px camera, one action per 5 Hz call."""

    def factory(env: Any) -> Any:
        key = os.environ.get(UNNORM_KEY_ENV, DEFAULT_UNNORM_KEY)
        policy = OpenVLARestBase(url, unnorm_key=key)
        # One action per call, played for a whole base period: hold it until the next one.
        return BaseController(policy, ChunkExecutor(policy, env.unwrapped.dt, mode="receding"))

    return BaseEntry(
        name,
        f"base: OpenVLA served by its REST server at {url}",
        factory,
        env_kwargs={"obs_mode": "rgb", "image_size": IMAGE_SIZE},
    )


def openvla_rest_family_entry(name: str) -> BaseEntry:
    """``openvla-rest:http://HOST:PORT``: OpenVLA served by its REST server there."""
    return openvla_rest_entry(name, server_url(name, OPENVLA_REST_PREFIX, ("http://", "https://")))


register_base_family(
    OPENVLA_REST_PREFIX,
    openvla_rest_family_entry,
    f"{OPENVLA_REST_PREFIX}http://HOST:PORT",
    server=True,
)
