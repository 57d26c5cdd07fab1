"""The wire format of remote base policies: openpi's websocket protocol, spoken without openpi.

Messages are msgpack. numpy arrays travel as maps ``{"__ndarray__": True, "data": <raw bytes>,
"dtype": <numpy dtype string, e.g. "<f4">, "shape": [...]}`` and numpy scalars as
``{"__npgeneric__": True, "data": <value>, "dtype": ...}``; the keys are msgpack *bin* strings,
exactly as ``openpi_client.msgpack_numpy`` writes them, and both bin and str keys are read.
Nothing is ever pickled: only plain numeric dtypes are accepted, and ``data`` must hold exactly
``prod(shape) * itemsize`` bytes.

A session: the server sends one metadata map as soon as the client connects; then each binary
frame the client sends is an observation map and is answered with a binary frame
``{"actions": (H, D) array, "server_timing": {"infer_ms": ...}}``, or with a *text* frame
holding the error message. A map with ``"__control__": "reset"`` (our extension, also accepted
by the Octo server script) starts an episode and is answered ``{"reset": True}``.

This module needs only numpy and msgpack, so the Octo server script can import it in Octo's
own environment.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, fields
from typing import Any

import msgpack
import numpy as np

PROTOCOL = "openpi-websocket"
PROTOCOL_VERSION = 1
HEALTH_PATH = "/healthz"
API_KEY_HEADER = "X-Api-Key"
CONTROL_KEY = "__control__"
PROMPT_KEY = "prompt"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 2**20
"""Largest request the server decodes; a bigger one is answered with an error frame."""


def _plain(dtype: np.dtype) -> bool:
    # Plain numbers only: object, void, structured and complex dtypes could smuggle arbitrary
    # data (or ask numpy to build objects from bytes).
    return dtype.kind in "biuf" and dtype.fields is None and dtype.subdtype is None


class ProtocolError(ValueError):
    """A message that does not follow the protocol (answered with an error frame)."""


def _check_dtype(dtype: Any) -> np.dtype:
    if isinstance(dtype, bytes):
        dtype = dtype.decode("ascii", "replace")
    if not isinstance(dtype, str):
        raise ProtocolError(f"array dtype must be a string, got {type(dtype).__name__}")
    try:
        parsed = np.dtype(dtype)
    except TypeError:
        raise ProtocolError(f"unknown array dtype {dtype!r}") from None
    if not _plain(parsed):
        raise ProtocolError(f"array dtype {dtype!r} is not allowed (plain numbers only)")
    return parsed


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if not _plain(obj.dtype):
            raise ProtocolError(f"cannot send arrays of dtype {obj.dtype}")
        return {
            b"__ndarray__": True,
            b"data": np.ascontiguousarray(obj).tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": list(obj.shape),
        }
    if isinstance(obj, np.generic):
        if not _plain(obj.dtype):
            raise ProtocolError(f"cannot send scalars of dtype {obj.dtype}")
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    if isinstance(obj, tuple):
        return list(obj)
    raise ProtocolError(f"cannot send a {type(obj).__name__}")


def _field(obj: dict, name: str) -> Any:
    for key in (name.encode(), name):
        if key in obj:
            return obj[key]
    raise ProtocolError(f"array map lacks {name!r}")


def _unpack_hook(obj: dict) -> Any:
    if b"__ndarray__" in obj or "__ndarray__" in obj:
        dtype = _check_dtype(_field(obj, "dtype"))
        shape, data = _field(obj, "shape"), _field(obj, "data")
        if not isinstance(shape, list | tuple) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ProtocolError(f"array shape must be a list of integers >= 0, got {shape!r}")
        if not isinstance(data, bytes):
            raise ProtocolError("array data must be a binary string")
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise ProtocolError(
                f"array data holds {len(data)} bytes, shape {list(shape)} of {dtype.str} "
                f"needs {math.prod(shape) * dtype.itemsize}"
            )
        # A copy: frombuffer views are read-only and would pin the whole message in memory.
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    if b"__npgeneric__" in obj or "__npgeneric__" in obj:
        dtype = _check_dtype(_field(obj, "dtype"))
        data = _field(obj, "data")
        if isinstance(data, bool | int | float):
            return dtype.type(data)
        raise ProtocolError(f"scalar data must be a number, got {type(data).__name__}")
    return obj


def packb(obj: Any) -> bytes:
    """Encode a message (maps, lists, strings, numbers, numpy arrays and scalars).

    Raises:
        ProtocolError: something that cannot travel (an object array, a custom class).
    """
    return msgpack.packb(obj, default=_pack_default, use_bin_type=True)


def unpackb(data: bytes, max_bytes: int | None = None) -> Any:
    """Decode a message; arrays come back as writable numpy arrays, bit for bit.

    Args:
        data: one binary frame.
        max_bytes: refuse a bigger frame before decoding it (None: no limit).

    Raises:
        ProtocolError: oversized, not msgpack, trailing bytes, or a malformed array map.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(f"expected a binary frame, got {type(data).__name__}")
    if max_bytes is not None and len(data) > max_bytes:
        raise ProtocolError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return msgpack.unpackb(
            data, object_hook=_unpack_hook, raw=False, strict_map_key=False, use_list=True
        )
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several types for damaged input
        raise ProtocolError(f"malformed msgpack message ({type(exc).__name__}: {exc})") from None


def str_keys(message: Any, what: str = "message") -> dict[str, Any]:
    """A decoded map with text keys (bin keys decoded as UTF-8).

    Raises:
        ProtocolError: not a map, or a key that is neither text nor UTF-8 bytes.
    """
    if not isinstance(message, dict):
        raise ProtocolError(f"{what} must be a map, got {type(message).__name__}")
    out = {}
    for key, value in message.items():
        if isinstance(key, bytes):
            try:
                key = key.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(f"{what} has a key that is not UTF-8") from None
        if not isinstance(key, str):
            raise ProtocolError(f"{what} keys must be strings, got {key!r}")
        out[key] = value
    return out


def spec_to_wire(spec: Any) -> dict[str, Any]:
    """A :class:`~residual_bench.policies.base.PolicySpec` as a plain map (for the metadata)."""
    data = asdict(spec)
    data["cameras"] = {k: list(v) for k, v in spec.cameras.items()}
    return data


def spec_from_wire(data: Any) -> Any:
    """The :class:`~residual_bench.policies.base.PolicySpec` of a metadata map.

    Raises:
        ProtocolError: missing or invalid fields (the message names the field).
    """
    # Not at the top: scripts/octo_server.py loads this file by path in Octo's environment,
    # where residual_bench need not be importable (and spec_from_wire is never called there).
    from residual_bench.policies.base import PolicySpec

    data = str_keys(data, "policy_spec")
    names = {f.name for f in fields(PolicySpec)}
    # Fields with a default (description, holds_rotation) may be left out by older servers.
    required = {f.name for f in fields(PolicySpec) if f.default is MISSING}
    missing = sorted(required - set(data))
    if missing:
        raise ProtocolError(f"policy_spec lacks {', '.join(missing)}")
    kwargs = {k: v for k, v in data.items() if k in names}
    if isinstance(kwargs.get("cameras"), dict):
        kwargs["cameras"] = {k: tuple(v) for k, v in str_keys(kwargs["cameras"]).items()}
    try:
        return PolicySpec(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"policy_spec: {exc}") from None
