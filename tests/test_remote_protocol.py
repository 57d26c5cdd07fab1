"""The wire codec of remote bases: openpi's msgpack-numpy format, bit for bit, never pickle."""

import msgpack
import numpy as np
import pytest

from residual_bench.policies.base import PolicySpec
from residual_bench.policies.remote import protocol as P

DTYPES = (np.float32, np.float64, np.uint8, np.int64, np.bool_)
SHAPES = ((), (0,), (3, 0), (5,), (2, 3, 4))


def sample(dtype, shape, seed=0):
    """Arrays whose every bit pattern matters: NaN payloads, -0.0, extremes."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype is np.bool_:
        flat = rng.random(n) < 0.5
    elif np.issubdtype(dtype, np.floating):
        flat = rng.standard_normal(n).astype(dtype)
        specials = np.array([-0.0, np.inf, -np.inf, np.nan, np.finfo(dtype).tiny], dtype)
        flat[: min(n, 5)] = specials[: min(n, 5)]
    else:
        info = np.iinfo(dtype)
        flat = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    return flat.reshape(shape)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_arrays_round_trip_bit_exactly(dtype, shape):
    a = sample(dtype, shape)
    b = P.unpackb(P.packb({"obs": {"a": a}, "prompt": "pick"}))["obs"]["a"]
    assert isinstance(b, np.ndarray) and b.dtype == a.dtype and b.shape == a.shape
    assert a.tobytes() == b.tobytes()
    assert b.flags.writeable  # a decoded observation can be modified by the policy


def test_numpy_scalars_and_big_endian_round_trip():
    for value in (np.float32(1.5), np.int64(-(2**62)), np.uint8(255), np.bool_(True)):
        out = P.unpackb(P.packb(value))
        assert type(out) is type(value) and out == value
    big = np.arange(4, dtype=">f8")
    assert P.unpackb(P.packb(big)).tobytes() == big.tobytes()


def test_the_encoding_is_openpis_bin_keyed_map():
    raw = msgpack.unpackb(P.packb(np.zeros(2, np.float32)), raw=False)
    assert raw == {b"__ndarray__": True, b"data": bytes(8), b"dtype": "<f4", b"shape": [2]}
    # ... and str-keyed maps (other openpi implementations) are read too.
    text = msgpack.packb({"__ndarray__": True, "data": bytes(2), "dtype": "|u1", "shape": [2]})
    assert P.unpackb(text).tolist() == [0, 0]


@pytest.mark.parametrize(
    "message, match",
    [
        (b"\xc1", "malformed msgpack"),
        (msgpack.packb({"a": 1}) + b"\x00", "malformed msgpack"),
        (msgpack.packb({"__ndarray__": True, "data": b"x", "dtype": "|O", "shape": [1]}), "|O"),
        (
            msgpack.packb({"__ndarray__": True, "data": b"abc", "dtype": "<f4", "shape": [1]}),
            "3 bytes",
        ),
        (msgpack.packb({"__ndarray__": True, "data": b"", "dtype": "<f4", "shape": [-1]}), "shape"),
        (msgpack.packb({"__ndarray__": True, "data": b"", "dtype": "V8", "shape": [0]}), "V8"),
        (msgpack.packb({"__ndarray__": True, "dtype": "<f4", "shape": [0]}), "data"),
    ],
    ids=["invalid-byte", "trailing", "object", "short-data", "negative-shape", "void", "no-data"],
)
def test_malformed_messages_raise_protocol_errors(message, match):
    with pytest.raises(P.ProtocolError, match=match.replace("|", r"\|")):
        P.unpackb(message)


def test_oversized_messages_are_refused_before_decoding():
    data = P.packb(np.zeros(1000, np.uint8))
    with pytest.raises(P.ProtocolError, match="exceeds the limit"):
        P.unpackb(data, max_bytes=100)


def test_objects_never_travel():
    with pytest.raises(P.ProtocolError):
        P.packb(np.array([object()]))
    with pytest.raises(P.ProtocolError):
        P.packb({"f": lambda: 0})


def test_policy_spec_round_trips_and_bad_specs_name_the_field():
    spec = PolicySpec(
        "toy", 5.0, 4, 7, "delta_ee_euler", "absolute_01", 1.0, 1.0,
        {"rgb": (84, 84)}, True, False, "bridge_orig", "a toy",
    )  # fmt: skip
    assert P.spec_from_wire(P.unpackb(P.packb(P.spec_to_wire(spec)))) == spec
    wire = P.spec_to_wire(spec) | {"gripper": "sticky"}
    with pytest.raises(P.ProtocolError, match="gripper"):
        P.spec_from_wire(wire)
    with pytest.raises(P.ProtocolError, match="chunk_len"):
        P.spec_from_wire({k: v for k, v in P.spec_to_wire(spec).items() if k != "chunk_len"})
    # A server from before a field with a default existed is still understood.
    older = {k: v for k, v in P.spec_to_wire(spec).items() if k != "holds_rotation"}
    assert P.spec_from_wire(older) == spec and not spec.holds_rotation
