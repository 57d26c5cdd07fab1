"""The learned ``bc`` base: demonstrations, training (resumable), checkpoints, the policy."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from residual_bench.language import word_counts
from residual_bench.policies.base import BasePolicy, check_chunk
from residual_bench.policies.bc.data import (
    collect_demonstrations,
    load_demonstrations,
    mask_keypoints,
)
from residual_bench.policies.bc.model import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    BCBase,
    BCNet,
    build_model,
    load_checkpoint,
)
from residual_bench.policies.bc.train import (
    chunk_targets,
    heatmap_cross_entropy,
    random_shift,
    train_bc,
)
from residual_bench.policies.registry import make_controller
from residual_bench.sim.geometry import rotate
from residual_bench.tasks.scene_objects import COLORS


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "demos.npz"
    collect_demonstrations(2, seed=3, out=path, progress=False)
    return path


def test_chunk_targets_take_the_next_actions_and_stop_at_the_episode_end():
    actions = np.arange(5, dtype=np.float32)[:, None].repeat(7, axis=1)
    episodes = np.array([0, 0, 0, 1, 1])
    targets = chunk_targets(actions, episodes, chunk_len=3)
    assert targets.shape == (5, 3, 7)
    np.testing.assert_array_equal(
        targets[:, :, 0], [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 4], [4, 4, 4]]
    )


def test_demonstrations_hold_camera_views_and_expert_actions(demos):
    data = load_demonstrations(demos)
    n = len(data["action"])
    assert n > 50 and data["rgb"].shape == (n, 84, 84, 3) and data["rgb"].dtype == np.uint8
    assert data["proprio"].shape == (n, 20) and data["instruction"].shape == (n, 32)
    assert set(np.unique(data["episode"])) == {0, 1}
    assert np.all(np.abs(data["action"]) <= 1.0)


def test_collecting_into_an_existing_file_is_refused(demos):
    with pytest.raises(FileExistsError, match="already exists"):
        collect_demonstrations(1, out=demos, progress=False)


def test_a_file_that_is_not_demonstrations_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, action=np.zeros((3, 7)))
    with pytest.raises(ValueError, match="missing arrays"):
        load_demonstrations(bad)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a demonstrations file"):
        load_demonstrations(garbage)
    cut_short = tmp_path / "cut-short.npz"  # a collection killed while writing its file
    cut_short.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a demonstrations file"):
        load_demonstrations(cut_short)
    with pytest.raises(FileNotFoundError):
        load_demonstrations(tmp_path / "missing.npz")


def test_training_writes_a_checkpoint_the_base_loads(demos, tmp_path):
    out = tmp_path / "bc.pt"
    summary = train_bc(demos, out, epochs=1, batch_size=64, progress=False)
    assert summary["final_loss"] is not None and np.isfinite(summary["final_loss"])
    base = BCBase(out)
    assert isinstance(base, BasePolicy) and base.spec.name == "bc"
    with pytest.raises(FileExistsError):
        train_bc(demos, out, epochs=1, progress=False)


def test_an_interrupted_training_run_resumes_to_the_same_weights(demos, tmp_path):
    straight = tmp_path / "straight.pt"
    train_bc(demos, straight, epochs=2, batch_size=64, progress=False)
    resumed = tmp_path / "resumed.pt"
    train_bc(demos, resumed, epochs=1, batch_size=64, progress=False)
    resumed.unlink()  # as if killed after the first epoch: only the training state is left
    train_bc(demos, resumed, epochs=2, batch_size=64, progress=False)
    a, b = load_checkpoint(straight)["model"], load_checkpoint(resumed)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"definitely not torch", "not a readable bc checkpoint"),
        ({"format": "something-else"}, "not a bc checkpoint"),
        ({"format": CHECKPOINT_FORMAT, "version": 99}, "version 99"),
        ({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}, "lacks 'config'"),
    ],
    ids=["garbage", "foreign", "version", "incomplete"],
)
def test_a_wrong_or_corrupt_checkpoint_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "ckpt.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(path)


def test_weights_of_another_network_are_refused():
    ckpt = load_checkpoint()
    ckpt = {**ckpt, "config": {"chunk_len": 8}}
    with pytest.raises(ValueError, match="do not fit"):
        build_model(ckpt)


def test_a_missing_checkpoint_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BCBase(tmp_path / "nope.pt")


def test_the_shipped_base_honours_its_spec_and_is_deterministic():
    base = BCBase()
    env = gym.make("ResidualPickPlace-v1", obs_mode="rgb", image_size=84)
    obs, info = env.reset(seed=0)
    base.reset(info["instruction"], 0)
    first, again = base.act(obs, info["instruction"]), base.act(obs, info["instruction"])
    check_chunk(base.spec, first)
    assert first.actions.dtype == np.float32 and np.all(np.abs(first.actions) <= 1.0)
    np.testing.assert_array_equal(first.actions, again.actions)
    env.close()


def test_the_bc_base_needs_camera_images():
    base = BCBase()
    with pytest.raises(ValueError, match="obs_mode='rgb'"):
        base.act({"proprio": np.zeros(20, np.float32)}, "put it on the plate")
    env = gym.make("ResidualPickPlace-v1")  # state observations only
    with pytest.raises(ValueError, match="needs camera images"):
        make_controller("bc", env)
    env.close()


def test_the_network_maps_a_batch_to_bounded_chunks():
    net = BCNet(chunk_len=4)
    out = net(torch.zeros(2, 84, 84, 3, dtype=torch.uint8), torch.zeros(2, 20), torch.zeros(2, 32))
    assert out.shape == (2, 4, 7) and torch.all(out.abs() <= 1)


def test_a_position_only_network_never_turns_the_hand():
    torch.manual_seed(0)
    net = BCNet(chunk_len=4, object_centric=True, position_only=True)
    rgb = torch.randint(0, 255, (3, 84, 84, 3), dtype=torch.uint8)
    out = net(rgb, torch.randn(3, 20), torch.randn(3, 32))
    assert out.shape == (3, 4, 7)
    assert torch.all(out[..., 3:6] == 0)
    assert torch.all(out[..., [0, 1, 2, 6]] != 0)


def test_a_position_only_base_trains_and_loads_from_its_checkpoint(demos, tmp_path):
    out = tmp_path / "bc.pt"
    train_bc(demos, out, epochs=1, batch_size=64, progress=False, position_only=True)
    assert load_checkpoint(out)["config"]["position_only"] is True
    env = gym.make("ResidualPickPlace-v1", obs_mode="rgb", image_size=84)
    obs, info = env.reset(seed=0)
    chunk = BCBase(out).act(obs, info["instruction"]).actions
    assert np.all(chunk[:, 3:6] == 0)


def test_word_counts_give_every_vocabulary_word_its_own_slot():
    vocabulary = ["blue", "move", "onto", "orange", "the"]
    # With the env's hashed features "orange" shares a slot with "move" and "onto".
    counts = word_counts("Move the orange cube onto the plate", vocabulary)
    assert counts.tolist() == [0, 1, 1, 1, 2]
    assert word_counts("move the blue cube onto the plate", vocabulary)[3] == 0


def test_a_network_with_its_own_vocabulary_reads_the_instruction_string(demos, tmp_path):
    out = tmp_path / "bc.pt"
    train_bc(demos, out, epochs=1, batch_size=64, progress=False, own_vocabulary=True)
    vocabulary = load_checkpoint(out)["config"]["vocabulary"]
    assert {"the", "plate"} <= set(vocabulary)
    base = BCBase(out)
    env = gym.make("ResidualPickPlace-v1", obs_mode="rgb", image_size=84)
    obs, info = env.reset(seed=0)
    colours = [w for w in vocabulary if w in COLORS]
    assert len(colours) >= 2  # the fixture's two episodes name two colours
    first = base.act(obs, f"put the {colours[0]} object on the plate").actions
    again = base.act(obs, f"put the {colours[0]} object on the plate").actions
    second = base.act(obs, f"put the {colours[1]} object on the plate").actions
    assert np.array_equal(first, again) and not np.allclose(first, second)
    # Words it never saw are ignored rather than refused.
    base.act(obs, "put the chartreuse object on the plate")


def test_a_vocabulary_network_needs_demonstrations_with_instruction_text(demos, tmp_path):
    data = dict(load_demonstrations(demos))
    del data["text"]
    with pytest.raises(ValueError, match="no instruction text"):
        train_bc(data, tmp_path / "bc.pt", epochs=1, progress=False, own_vocabulary=True)


def test_demonstrations_recorded_before_instruction_text_still_load(demos, tmp_path):
    data = dict(load_demonstrations(demos))
    del data["text"]
    np.savez(tmp_path / "old.npz", **data)
    assert "text" not in load_demonstrations(tmp_path / "old.npz")


def test_demonstrations_perturb_the_translation_only():
    """The executed noise (DART) must not turn the hand: a position-only network could not
    undo a turn it never caused."""
    clean = collect_demonstrations(1, seed=5, progress=False, noise=0.0)
    noisy = collect_demonstrations(1, seed=5, progress=False, noise=0.5)
    n = min(len(clean["proprio"]), len(noisy["proprio"]))
    assert not np.allclose(clean["proprio"][:n, 9:12], noisy["proprio"][:n, 9:12])
    down, fingers = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    quaternions = noisy["proprio"][:, 12:16]
    tilt = [np.degrees(np.arccos(min(abs(rotate(q, down)[2]), 1.0))) for q in quaternions]
    yaw = [np.degrees(np.arctan2(*rotate(q, fingers)[1::-1])) for q in quaternions]
    assert max(tilt) < 5.0 and np.ptp(yaw) < 5.0


def test_mask_keypoints_are_mask_centroids_in_normalised_image_coordinates():
    seg = np.zeros((84, 84, 1), dtype=np.uint8)
    seg[10:12, 20:24] = 4  # the target: rows 10-11, columns 20-23
    points, visible = mask_keypoints(seg)
    assert visible.tolist() == [True, False]  # no plate pixel
    expected_x = (21.5 + 0.5) / 84 * 2 - 1
    expected_y = (10.5 + 0.5) / 84 * 2 - 1
    np.testing.assert_allclose(points[0], [expected_x, expected_y], rtol=1e-6)
    np.testing.assert_array_equal(points[1], [0.0, 0.0])


def test_random_shift_moves_the_keypoint_labels_with_the_image():
    image = np.zeros((1, 84, 84, 3), dtype=np.uint8)
    image[0, 40, 30] = 255  # one bright pixel
    seg = np.zeros((84, 84, 1), dtype=np.uint8)
    seg[40, 30] = 4
    label, _ = mask_keypoints(seg)
    generator = torch.Generator().manual_seed(5)
    for _ in range(5):
        shifted, shift = random_shift(torch.as_tensor(image), generator)
        rows, cols = np.nonzero(shifted[0, :, :, 0].numpy() == 255)
        moved = np.zeros((84, 84, 1), dtype=np.uint8)
        moved[rows, cols] = 4
        np.testing.assert_allclose(
            mask_keypoints(moved)[0][0], label[0] + shift[0].numpy(), atol=1e-6
        )


def test_demonstration_keypoints_follow_the_gripper_and_the_target(demos):
    data = load_demonstrations(demos)
    assert data["keypoints"].shape == (len(data["action"]), 3, 2)
    assert data["keypoint_visible"][:, 2].all()  # the gripper is projected, always known
    gripper = data["keypoints"][:, 2]
    assert np.ptp(gripper, axis=0).min() > 0.1  # it moves across the image during a demo


def test_the_network_returns_one_image_keypoint_per_tracked_thing():
    net = BCNet(chunk_len=4, keypoints=3)
    rgb = torch.zeros((2, 84, 84, 3), dtype=torch.uint8)
    actions, points = net.forward_with_keypoints(rgb, torch.zeros(2, 20), torch.zeros(2, 32))
    assert actions.shape == (2, 4, 7) and points.shape == (2, 3, 2)
    assert torch.all(points.abs() <= 1.0)


def test_the_object_centric_network_does_not_know_where_a_pixel_is():
    # No coordinate channels: shifting the whole image by one feature cell (4 px) shifts every
    # heatmap by one cell, away from the borders.
    net = BCNet(object_centric=True).eval()
    rgb = torch.full((1, 84, 84, 3), 90, dtype=torch.uint8)
    rgb[0, 40:44, 36:40] = torch.tensor([200, 30, 30], dtype=torch.uint8)
    shifted = torch.roll(rgb, shifts=4, dims=2)
    with torch.no_grad():
        _, _, a = net.forward_with_heatmaps(rgb, torch.zeros(1, 20), torch.zeros(1, 32))
        _, _, b = net.forward_with_heatmaps(shifted, torch.zeros(1, 20), torch.zeros(1, 32))
    torch.testing.assert_close(b[..., 4:16, 5:16], a[..., 4:16, 4:15])


def test_the_heatmap_loss_is_lowest_for_a_peak_on_the_keypoint_cell():
    point = torch.tensor([[[0.3, -0.5]]])  # x, y in [-1, 1]
    col, row = int((0.3 + 1) / 2 * 21), int((-0.5 + 1) / 2 * 21)
    on_target = torch.zeros(1, 1, 21, 21)
    on_target[0, 0, row, col] = 10.0
    beside = torch.zeros(1, 1, 21, 21)
    beside[0, 0, row, (col + 5) % 21] = 10.0
    spread = torch.zeros(1, 1, 21, 21)
    loss = [heatmap_cross_entropy(h, point).item() for h in (on_target, spread, beside)]
    assert loss[0] < 0.05 < loss[1] < loss[2]


def test_the_object_centric_head_sees_the_image_only_through_its_keypoints():
    # Whatever else is in the picture, the actions are a function of where the heatmaps peak:
    # what the network learns about one scene cannot hinge on the rest of it.
    net = BCNet(chunk_len=4, keypoints=3, object_centric=True)
    rgb = torch.randint(0, 255, (1, 84, 84, 3), dtype=torch.uint8)
    proprio, words = torch.zeros(1, 20), torch.zeros(1, 32)
    actions, points, logits = net.forward_with_heatmaps(rgb, proprio, words)
    peak = torch.log_softmax(logits.flatten(2), dim=-1).max(dim=-1).values
    fused = torch.cat([points.flatten(1), peak, proprio], dim=1)
    torch.testing.assert_close(torch.tanh(net.head(fused)).view(1, 4, 7), actions)


def test_the_default_layout_draws_its_initial_weights_as_the_first_bc_base_did():
    # The first shipped checkpoint (results/bc/README.md measures it) came from this seed and
    # this order of module creation; keeping the order keeps `bench base train bc` reproducing it.
    order = [name.split(".")[0] for name in BCNet().state_dict()]
    assert list(dict.fromkeys(order)) == ["trunk", "film", "refine", "heatmaps", "pooled", "head"]
    torch.manual_seed(0)
    # The last layer is drawn last, so its weights depend on every draw before it (the value
    # the network of the first base's code drew for seed 0).
    assert BCNet().head[-1].weight.sum().item() == pytest.approx(3.380289, abs=1e-5)
