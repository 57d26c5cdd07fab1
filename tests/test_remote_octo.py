"""Octo: the pure pre/post-processing against hand-computed values, and the server script run
here with a stand-in model (it loads without Octo, JAX or TensorFlow) behind ``--base octo``."""

import importlib.util
import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from residual_bench.policies.executor import BaseUnavailableError
from residual_bench.policies.registry import get_base
from residual_bench.policies.remote import octo_processing as op
from residual_bench.policies.remote.protocol import spec_from_wire

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "octo_server.py"


def gray(values):
    """An (H, W, 3) uint8 image with the same value in every channel."""
    return np.repeat(np.asarray(values, np.uint8)[..., None], 3, axis=2)


def test_resize_upsamples_with_aligned_pixel_centres():
    # src = (dst + 0.5) * 2 / 4 - 0.5 = [-0.25, 0.25, 0.75, 1.25] -> clamped [0, .25, .75, 1],
    # so out[i, j] = 100 * (w[i] + w[j]) for the image [[0, 100], [100, 200]].
    out = op.resize_image(gray([[0, 100], [100, 200]]), size=4)
    w = np.array([0.0, 0.25, 0.75, 1.0])
    np.testing.assert_array_equal(out, gray(100 * (w[:, None] + w[None, :])))


def test_resize_downsamples_between_neighbours_and_keeps_the_right_size_untouched():
    # src = (dst + 0.5) * 4 / 2 - 0.5 = [0.5, 2.5]: halfway between pixel pairs.
    out = op.resize_image(gray(np.tile([0, 10, 20, 30], (4, 1))), size=2)
    np.testing.assert_array_equal(out, gray([[5, 25], [5, 25]]))
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    same = op.resize_image(image)
    assert same.tobytes() == image.tobytes() and same is not image
    with pytest.raises(ValueError, match="uint8"):
        op.resize_image(image.astype(np.float32))


STATS = {
    "mean": [1.0, 2.0, 3.0],
    "std": [2.0, 2.0, 2.0],
    "min": [0.0, 0.0, 0.0],
    "max": [2.0, 4.0, 6.0],
    "mask": [True, True, False],  # the gripper-like last dimension is not normalised
}


def test_normal_unnormalisation_on_masked_dimensions_only():
    out = op.unnormalize_actions(np.array([[1.0, -1.0, 0.5]]), STATS, "normal")
    np.testing.assert_allclose(out, [[3.0, 0.0, 0.5]])  # 1*2+1, -1*2+2, untouched


def test_bounds_unnormalisation_matches_octos_formula():
    out = op.unnormalize_actions(np.array([[1.0, -1.0, 0.5]]), STATS, "bounds")
    # (x + 1) / 2 * (max - min + 1e-8) + min
    np.testing.assert_allclose(out, [[2.0 + 1e-8, 0.0, 0.5]], rtol=0, atol=1e-12)
    no_mask = {k: v for k, v in STATS.items() if k != "mask"}
    np.testing.assert_allclose(op.unnormalize_actions([0.0, 0.0, 0.0], no_mask), [1, 2, 3])
    with pytest.raises(ValueError, match="unknown 'q99'"):
        op.unnormalize_actions([0.0] * 3, STATS, "q99")
    with pytest.raises(ValueError, match="shape"):
        op.unnormalize_actions([0.0] * 4, STATS)


def test_postprocess_keeps_the_first_four_actions_as_float32():
    stats = {"mean": np.zeros(7), "std": np.full(7, 2.0), "mask": np.arange(7) < 6}
    raw = np.arange(8 * 7, dtype=np.float64).reshape(1, 8, 7) / 100
    out = op.postprocess_actions(raw, stats)
    expected = raw[0, :4] * np.where(np.arange(7) < 6, 2.0, 1.0)
    assert out.dtype == np.float32 and out.shape == (4, 7)
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    with pytest.raises(ValueError, match="batch of one"):
        op.postprocess_actions(np.zeros((2, 4, 7)), stats)


def test_history_pads_with_the_first_observation_and_masks_the_padding():
    h = op.ObservationHistory(window=2)
    a, b, c = ({"image": np.full(2, v)} for v in (1, 2, 3))
    first, second, third = h.push(a), h.push(b), h.push(c)
    assert first["image"].tolist() == [[1, 1], [1, 1]]
    assert first["timestep_pad_mask"].tolist() == [False, True]
    assert second["image"].tolist() == [[1, 1], [2, 2]]
    assert second["timestep_pad_mask"].tolist() == [True, True]
    assert third["image"].tolist() == [[2, 2], [3, 3]]
    h.reset()
    assert h.push(c)["timestep_pad_mask"].tolist() == [False, True]
    three = op.ObservationHistory(window=3)
    three.push(a)
    assert three.push(b)["timestep_pad_mask"].tolist() == [False, True, True]


def test_the_advertised_spec_is_valid():
    spec = spec_from_wire(op.octo_spec_wire())
    assert (spec.chunk_len, spec.control_hz, spec.cameras) == (4, 5.0, {"rgb": (256, 256)})


class FakeOcto:
    """Octo's model API as the script uses it: create_tasks and sample_actions."""

    def __init__(self):
        self.calls, self.tasks = [], []

    def create_tasks(self, texts):
        self.tasks.append(list(texts))
        return {"language_instruction": texts}

    def sample_actions(self, observations, tasks, rng):
        self.calls.append((observations, tasks, rng))
        return np.full((1, 4, 7), 0.5)


@pytest.fixture
def octo_script():
    spec = importlib.util.spec_from_file_location("octo_server_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STATS7 = {"mean": np.zeros(7), "std": np.full(7, 2.0), "mask": np.arange(7) < 6}


def test_octo_server_script_serves_the_base_octo_connects_to(octo_script, monkeypatch, make_env):
    model = FakeOcto()
    policy = octo_script.OctoPolicy(model, STATS7, resize=op.resize_image, rngs=itertools.count)
    server = octo_script.make_server(octo_script.OctoServer(policy), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        monkeypatch.setenv("RESIDUAL_BENCH_OCTO_URL", url)
        entry = get_base("octo")
        assert entry.env_kwargs == {"obs_mode": "rgb", "image_size": 256}
        controller = entry.factory(make_env(**entry.env_kwargs))
        assert controller.executor.mode == "receding" and controller.executor.latency is None
        remote = controller.policy
        remote.reset("put the eggplant in the basket", 11)
        image = np.zeros((64, 64, 3), np.uint8)  # resized to 256 on the server
        chunks = [remote.act({"rgb": image}, "put the eggplant in the basket") for _ in range(2)]
        expected = np.tile(np.where(np.arange(7) < 6, 1.0, 0.5), (4, 1)).astype(np.float32)
        np.testing.assert_array_equal(chunks[1].actions, expected)
        (obs0, _, rng0), (obs1, _, rng1) = model.calls
        assert obs0["image_primary"].shape == (1, 2, 256, 256, 3)
        assert obs0["timestep_pad_mask"].tolist() == [[False, True]]
        assert obs1["timestep_pad_mask"].tolist() == [[True, True]]
        assert (rng0, rng1) == (11, 12)  # keys drawn from the episode seed
        assert model.tasks == [["put the eggplant in the basket"]]  # embedded once
        with pytest.raises(BaseUnavailableError, match="uint8"):
            remote.act({"rgb": image.astype(np.float32)}, "x")
        remote.close()
    finally:
        server.shutdown()
