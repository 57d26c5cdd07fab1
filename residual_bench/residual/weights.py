"""A residual's network as data: safetensors weights and a JSON description.

A residual on disk never holds a pickle. Its ``residual.json`` describes the network (the
stable-baselines3 policy class, the observation and action spaces, the constructor's
keyword arguments) and ``policy.safetensors`` holds the policy's ``state_dict``: its weights
and its buffers (CrossQ's batch-renorm running statistics). Loading rebuilds the network from
the description and copies the tensors in: nothing in the files can run code, and every size
is checked before anything is allocated.

stable-baselines3's own ``model.zip`` stores spaces and the policy class as cloudpickle
strings, so loading one runs whatever its author put there. :func:`read_sb3_policy_state`
takes the weights out of such a file without unpickling: it reads only the zip's
``policy.pth``, with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.vec_env import VecTransposeImage

from residual_bench.residual.algorithms import ALGORITHMS

MAX_WEIGHTS_BYTES = 64 * 1024 * 1024
"""A residual is a few small networks (the shipped ones hold under 1 MB of weights)."""
MAX_SPACE_SIZE = 1_000_000
"""Numbers in one observation: a 224x224 RGB image is 150,528."""
MAX_LAYER_WIDTH = 4096
MAX_LAYERS = 8
MAX_CRITICS = 32
MAX_QUANTILES = 256
"""TQC's quantiles per critic (rl-zoo3 and the paper use 25)."""
MAX_RENORM_WARMUP_STEPS = 10**9

POLICY_NAMES = ("MlpPolicy", "MultiInputPolicy")
# Keyword arguments of SB3's policy constructors that are plain data; anything else (an
# activation class, an optimiser class, a features-extractor class) would need code.
POLICY_KWARGS = frozenset(
    {
        "net_arch",
        "n_critics",
        "use_sde",
        "log_std_init",
        "use_expln",
        "clip_mean",
        "ortho_init",
        "share_features_extractor",
        "normalize_images",
        "features_extractor_kwargs",
        # TQC's critics
        "n_quantiles",
        # CrossQ's batch renormalisation (its running statistics are buffers of the policy's
        # state dict, saved and restored with the weights)
        "batch_norm",
        "batch_norm_momentum",
        "batch_norm_eps",
        "renorm_warmup_steps",
        # LayerNorm in the critics (residual.critics)
        "critic_layer_norm",
    }
)
FEATURES_EXTRACTOR_KWARGS = frozenset({"cnn_output_dim", "normalized_image"})
DTYPES = ("float32", "float64", "uint8")


def space_to_json(space: gym.Space) -> dict[str, Any]:
    """A Box or a Dict of Boxes as JSON (infinite bounds as the strings ``inf`` / ``-inf``)."""
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(s) for k, s in space.spaces.items()}}
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"space {type(space).__name__}: only Box and Dict spaces are stored")

    def bounds(values: np.ndarray) -> list:
        return [
            v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values.ravel().tolist()
        ]

    return {
        "type": "Box",
        "shape": list(space.shape),
        "dtype": str(space.dtype),
        "low": bounds(space.low),
        "high": bounds(space.high),
    }


def space_from_json(data: Any, where: str = "space") -> gym.Space:
    """The space :func:`space_to_json` wrote, checked field by field before it is built.

    Raises:
        ValueError: a malformed or oversized description (``where`` names it).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    kind = data.get("type")
    if kind == "Dict":
        spaces = data.get("spaces")
        if not isinstance(spaces, Mapping) or not spaces or len(spaces) > 16:
            raise ValueError(f"{where}.spaces: expected 1 to 16 named spaces")
        built = {str(k): space_from_json(v, f"{where}.spaces.{k}") for k, v in spaces.items()}
        if sum(int(np.prod(s.shape)) for s in built.values()) > MAX_SPACE_SIZE:
            raise ValueError(f"{where}: more than {MAX_SPACE_SIZE} numbers in one observation")
        return gym.spaces.Dict(built)
    if kind != "Box":
        raise ValueError(f"{where}.type: expected 'Box' or 'Dict', got {str(kind)[:40]!r}")
    shape = data.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 4
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        raise ValueError(f"{where}.shape: expected 1 to 4 positive integers")
    size = math.prod(shape)
    if size > MAX_SPACE_SIZE:
        raise ValueError(f"{where}.shape: {size} numbers, more than {MAX_SPACE_SIZE}")
    dtype = data.get("dtype")
    if dtype not in DTYPES:
        raise ValueError(f"{where}.dtype: expected one of {list(DTYPES)}, got {str(dtype)[:40]!r}")
    low = _bounds(data.get("low"), size, f"{where}.low")
    high = _bounds(data.get("high"), size, f"{where}.high")
    if np.any(low > high):
        raise ValueError(f"{where}: a low bound above its high bound")
    # Stored bounds are the space's own values, so casting back to its dtype is exact.
    low, high = low.astype(dtype).reshape(shape), high.astype(dtype).reshape(shape)
    return gym.spaces.Box(low, high, dtype=np.dtype(dtype))


def _bounds(values: Any, size: int, where: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) != size:
        raise ValueError(f"{where}: expected a list of {size} numbers")
    out = np.empty(size, dtype=np.float64)
    for i, v in enumerate(values):
        if v in ("inf", "-inf"):
            out[i] = float(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = v
        else:
            raise ValueError(f"{where}[{i}]: expected a finite number, 'inf' or '-inf'")
    return out


def channel_first_space(space: gym.spaces.Dict) -> gym.spaces.Dict:
    """A Dict space with its channel-last images made channel-first, as SB3 sees them (it
    wraps an env with such images in ``VecTransposeImage``)."""
    return gym.spaces.Dict(
        {
            key: VecTransposeImage.transpose_space(sub)
            if is_image_space(sub) and not is_image_space_channels_first(sub)
            else sub
            for key, sub in space.spaces.items()
        }
    )


def _is_int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


BOOLEAN_KWARGS = (
    "use_sde",
    "use_expln",
    "ortho_init",
    "share_features_extractor",
    "normalize_images",
    "batch_norm",
    "critic_layer_norm",
)


def check_policy_kwargs(kwargs: Any, where: str = "policy_kwargs") -> dict[str, Any]:
    """Keyword arguments of an SB3 policy that are plain data and of bounded size.

    Raises:
        ValueError: an unknown key (e.g. a class, which only code could name) or a size
            beyond the limits (``MAX_LAYERS`` layers of ``MAX_LAYER_WIDTH``, ``MAX_CRITICS``).
    """
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"{where}: expected an object")
    unknown = sorted(set(kwargs) - POLICY_KWARGS)
    if unknown:
        raise ValueError(
            f"{where}: unsupported key(s) {[str(k)[:40] for k in unknown[:5]]}; "
            f"valid: {sorted(POLICY_KWARGS)}"
        )
    arch = kwargs.get("net_arch", [])
    if isinstance(arch, Mapping) and not set(arch) <= {"pi", "qf", "vf"}:
        raise ValueError(f"{where}.net_arch: keys must be pi, qf and vf")
    for layer in arch.values() if isinstance(arch, Mapping) else [arch]:
        if (
            not isinstance(layer, list)
            or len(layer) > MAX_LAYERS
            or not all(_is_int_in(w, 1, MAX_LAYER_WIDTH) for w in layer)
        ):
            raise ValueError(
                f"{where}.net_arch: expected at most {MAX_LAYERS} widths of 1 to {MAX_LAYER_WIDTH}"
            )
    if not _is_int_in(kwargs.get("n_critics", 2), 1, MAX_CRITICS):
        raise ValueError(f"{where}.n_critics: expected an integer from 1 to {MAX_CRITICS}")
    if not _is_int_in(kwargs.get("n_quantiles", 25), 1, MAX_QUANTILES):
        raise ValueError(f"{where}.n_quantiles: expected an integer from 1 to {MAX_QUANTILES}")
    if not _is_int_in(kwargs.get("renorm_warmup_steps", 0), 0, MAX_RENORM_WARMUP_STEPS):
        raise ValueError(
            f"{where}.renorm_warmup_steps: expected an integer from 0 to {MAX_RENORM_WARMUP_STEPS}"
        )
    extractor = kwargs.get("features_extractor_kwargs", {})
    if not isinstance(extractor, Mapping) or not set(extractor) <= FEATURES_EXTRACTOR_KWARGS:
        raise ValueError(
            f"{where}.features_extractor_kwargs: valid keys {sorted(FEATURES_EXTRACTOR_KWARGS)}"
        )
    if not _is_int_in(extractor.get("cnn_output_dim", 256), 1, MAX_LAYER_WIDTH):
        raise ValueError(
            f"{where}.features_extractor_kwargs.cnn_output_dim: 1 to {MAX_LAYER_WIDTH}"
        )
    booleans = {key: kwargs[key] for key in BOOLEAN_KWARGS if key in kwargs}
    if "normalized_image" in extractor:
        booleans["features_extractor_kwargs.normalized_image"] = extractor["normalized_image"]
    for name, value in booleans.items():
        if not isinstance(value, bool):
            raise ValueError(f"{where}.{name}: expected true or false")
    for key in ("log_std_init", "clip_mean"):
        if not _is_number(kwargs.get(key, 0.0)):
            raise ValueError(f"{where}.{key}: expected a finite number")
    for key in ("batch_norm_momentum", "batch_norm_eps"):
        value = kwargs.get(key, 0.01)
        if not _is_number(value) or not 0 < value <= 1:
            raise ValueError(f"{where}.{key}: expected a number in (0, 1]")
    return dict(kwargs)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def policy_name(observation_space: gym.Space) -> str:
    """SB3's name of the policy for an observation space: a Dict needs ``MultiInputPolicy``."""
    return "MultiInputPolicy" if isinstance(observation_space, gym.spaces.Dict) else "MlpPolicy"


def describe_policy(algo: str, model: Any) -> dict[str, Any]:
    """The JSON description of a live SB3 model's policy (see :func:`build_policy`)."""
    kwargs = dict(model.policy_kwargs)
    if not ALGORITHMS[algo].off_policy:
        kwargs["use_sde"] = bool(model.use_sde)  # on-policy SB3 passes it beside policy_kwargs
    return describe_network(algo, model.policy.observation_space, model.policy.action_space, kwargs)


def describe_network(
    algo: str, observation_space: gym.Space, action_space: gym.Space, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The JSON description :func:`build_policy` rebuilds a network from."""
    return {
        "algo": algo,
        "policy": policy_name(observation_space),
        "observation_space": space_to_json(observation_space),
        "action_space": space_to_json(action_space),
        "policy_kwargs": check_policy_kwargs(kwargs),
    }


def build_policy(description: Any, where: str = "policy") -> BasePolicy:
    """An SB3 policy with freshly initialised weights, built from its JSON description.

    Raises:
        ValueError: a malformed, unknown or oversized description (``where`` names it).
    """
    if not isinstance(description, Mapping):
        raise ValueError(f"{where}: expected an object describing the network")
    algo = description.get("algo")
    if algo not in ALGORITHMS:
        raise ValueError(
            f"{where}.algo: expected one of {sorted(ALGORITHMS)}, got {str(algo)[:40]!r}"
        )
    name = description.get("policy")
    if name not in POLICY_NAMES:
        raise ValueError(f"{where}.policy: expected one of {list(POLICY_NAMES)}")
    observation_space = space_from_json(
        description.get("observation_space"), f"{where}.observation_space"
    )
    action_space = space_from_json(description.get("action_space"), f"{where}.action_space")
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"{where}.action_space: expected a one-dimensional Box")
    if (name == "MultiInputPolicy") != isinstance(observation_space, gym.spaces.Dict):
        raise ValueError(f"{where}.policy: MultiInputPolicy goes with a Dict observation space")
    kwargs = check_policy_kwargs(description.get("policy_kwargs", {}), f"{where}.policy_kwargs")
    cls = ALGORITHMS[algo].policy_class(name)
    if cls is None:
        raise ValueError(f"{where}.policy: {algo} has no {name}")
    try:
        policy = cls(observation_space, action_space, lambda _: 0.0, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"{where}: SB3 cannot build this network ({exc})") from None
    policy.set_training_mode(False)
    return policy


def save_weights(policy: torch.nn.Module, path: str | Path) -> None:
    """Write a policy's ``state_dict`` as safetensors (contiguous copies: shared storage and
    views are not representable there)."""
    state = {k: v.detach().contiguous().clone() for k, v in policy.state_dict().items()}
    save_file(state, str(path))


def load_weights(policy: torch.nn.Module, path: str | Path) -> None:
    """Copy the tensors of a safetensors file into ``policy``: exactly its names and shapes.

    Raises:
        ValueError: the file is too large, not safetensors, or does not fit the network.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise ValueError(f"{path}: {size} bytes, more than a residual's {MAX_WEIGHTS_BYTES}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    _copy_state(policy, state, str(path))


def _copy_state(policy: torch.nn.Module, state: Mapping[str, Any], where: str) -> None:
    expected = policy.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{where}: weights do not fit the described network (missing {missing[:3]}, "
            f"unexpected {[k[:60] for k in extra[:3]]})"
        )
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[key].shape:
            raise ValueError(f"{where}: {key} has another shape than the described network")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{where}: {key} holds NaN or infinite weights")
    policy.load_state_dict(dict(state), strict=True)


def read_sb3_policy_state(zip_path: str | Path) -> dict[str, torch.Tensor]:
    """The policy weights inside an SB3 ``model.zip``, read without unpickling anything.

    Only the ``policy.pth`` member is read (bounded by ``MAX_WEIGHTS_BYTES``), and with
    ``torch.load(weights_only=True)``, which accepts tensors and containers, never code.

    Raises:
        ValueError: not a zip, no ``policy.pth``, too large, or not a weights-only file.
    """
    try:
        with zipfile.ZipFile(zip_path) as archive:
            info = archive.getinfo("policy.pth")
            if info.file_size > MAX_WEIGHTS_BYTES:
                raise ValueError(f"{zip_path}: policy.pth is larger than {MAX_WEIGHTS_BYTES} bytes")
            raw = archive.read(info)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ValueError(f"{zip_path}: not an SB3 model with policy weights ({exc})") from None
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for bad data
        raise ValueError(
            f"{zip_path}: policy.pth is not a weights-only state dict ({exc})"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(f"{zip_path}: policy.pth is not a state dict of tensors")
    return dict(state)


def load_state(policy: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy an in-memory state dict into ``policy`` with the checks of :func:`load_weights`."""
    _copy_state(policy, state, where)
