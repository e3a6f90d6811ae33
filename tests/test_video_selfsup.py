"""Self-supervised depth from video: geometry, loss parts, stereo and height scale, the dataset, training."""

from __future__ import annotations

import copy
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hydranet.data.datasets import VideoFrames, build_dataset
from hydranet.data.datasets.video import read_camera_file
from hydranet.data.sample import collate
from hydranet.data.transforms import HorizontalFlip, RandomCrop, Resize
from hydranet.errors import InputError
from hydranet.model.pose import PoseNet, axis_angle_to_matrix
from hydranet.training.config import load_config
from hydranet.training.trainer import Trainer
from hydranet.training.video import load_pose_net
from hydranet.training.view_synthesis import (angle_between_deg, min_reprojection, photometric_error,
                                              road_plane_height, smoothness, ssim_error, stereo_motion,
                                              stereo_scale, view_synthesis_loss, warp)

F, CX, CY, H, W = 60.0, 47.5, 31.5, 64, 96


def _k(n: int = 1) -> torch.Tensor:
    return torch.tensor([[F, 0, CX], [0, F, CY], [0, 0, 1]], dtype=torch.float32).repeat(n, 1, 1)


def _texture(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth colour texture on a plane, a function of the plane's metric coordinates."""
    return np.stack([0.5 + 0.4 * np.sin(1.7 * x + 0.3 * y), 0.5 + 0.4 * np.cos(1.3 * y - 0.5 * x),
                     0.5 + 0.3 * np.sin(0.9 * (x + y))], 0).astype(np.float32)


def plane_view(depth: float, shift: tuple[float, float, float]) -> torch.Tensor:
    """What a camera sees of the textured plane z = ``depth`` (frame t's coordinates) when it
    sits where ``T_{t->s}`` = translation ``shift`` puts it: pixel (u, v) of the source looks
    along its ray to the plane, which lies at z = depth + shift_z in its own coordinates."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    z = depth + shift[2]
    xs, ys = (u - CX) * z / F, (v - CY) * z / F
    return torch.from_numpy(_texture(xs - shift[0], ys - shift[1]))[None]


def _motion(t: tuple[float, float, float]) -> torch.Tensor:
    m = torch.eye(4)[None].clone()
    m[0, :3, 3] = torch.tensor(t)
    return m


def test_warp_with_true_depth_and_motion_reproduces_the_neighbour():
    target = plane_view(5.0, (0.0, 0.0, 0.0))
    for shift in [(0.3, 0.0, 0.0), (0.0, 0.1, -1.0), (-0.2, 0.05, 0.8)]:
        source = plane_view(5.0, shift)
        depth = torch.full((1, 1, H, W), 5.0)
        synth, valid = warp(source, depth, _motion(shift), _k())
        assert valid.float().mean() > 0.6
        err = (synth - target).abs()[valid.expand_as(synth)]
        assert float(err.max()) < 0.02, shift  # bilinear sampling of a smooth texture
        wrong, _ = warp(source, depth * 0.7, _motion(shift), _k())
        assert float((wrong - target).abs()[valid.expand_as(synth)].mean()) > 5 * float(err.mean())


def test_warp_on_a_rendered_street_with_its_true_depth_and_pose():
    pytest.importorskip("pybullet")
    from hydranet.data.synthetic.layout import generate_layout
    from hydranet.data.synthetic.renderer import Camera, SceneRenderer

    renderer = SceneRenderer()
    try:
        layout = generate_layout(11, clear_ahead=20)
        cams = [Camera(position=(i * 1.2, layout.ego_lane_y, 1.45), yaw=math.radians(2.0 * i),
                       pitch=math.radians(-1.5), height=96, width=128) for i in range(2)]
        renders = [renderer.render(layout, c) for c in cams]  # the renderer's own colours: no noise
    finally:
        renderer.close()
    image = [torch.from_numpy(r.rgb).permute(2, 0, 1)[None].float() / 255 for r in renders]
    depth = torch.from_numpy(np.where(np.isfinite(renders[0].depth), renders[0].depth, 0.0)).float()[None, None]
    k = torch.from_numpy(cams[0].intrinsics()).float()[None]
    synth, valid = warp(image[1], depth, torch.from_numpy(cams[0].motion_to(cams[1])).float()[None], k)
    seen = valid & (depth > 0)
    err = (synth - image[0]).abs().mean(1, keepdim=True)[seen]
    identity = (image[1] - image[0]).abs().mean(1, keepdim=True)[seen]
    assert float(err.median()) < 0.01  # object edges and pixels hidden in the neighbour are the rest
    assert float(err.mean()) < 0.5 * float(identity.mean())


def test_min_reprojection_and_automask_by_hand():
    e1 = torch.tensor([[0.2, 0.5], [0.3, 0.9]]).reshape(1, 1, 2, 2)
    e2 = torch.tensor([[0.4, 0.1], [0.3, 0.8]]).reshape(1, 1, 2, 2)
    loss, mask = min_reprojection([e1, e2])
    assert torch.allclose(loss.flatten(), torch.tensor([0.2, 0.1, 0.3, 0.8]))
    assert mask.all()
    i1 = torch.tensor([[0.1, 0.6], [0.3, 0.9]]).reshape(1, 1, 2, 2)  # unwarped neighbours
    i2 = torch.tensor([[0.5, 0.7], [0.4, 0.7]]).reshape(1, 1, 2, 2)
    loss, mask = min_reprojection([e1, e2], [i1, i2])
    # pixel 0: identity 0.1 < 0.2 -> masked; 1: 0.6 > 0.1 kept; 2: tie 0.3 -> masked; 3: 0.7 < 0.8 masked
    assert mask.flatten().tolist() == [False, True, False, False]
    # masked pixels keep their identity error as the value (monodepth2's minimum over both)
    assert torch.allclose(loss.flatten(), torch.tensor([0.1, 0.1, 0.3, 0.7]))
    outside = [torch.tensor([[True, True], [False, True]]).reshape(1, 1, 2, 2),
               torch.tensor([[True, False], [False, True]]).reshape(1, 1, 2, 2)]
    loss, mask = min_reprojection([e1, e2], valid=outside)
    assert torch.allclose(loss.flatten(), torch.tensor([0.2, 0.5, 0.0, 0.8]))  # pixel 2: no source sees it
    assert mask.flatten().tolist() == [True, True, False, True]


def test_photometric_parts_by_hand():
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert float(ssim_error(x, x).max()) < 1e-6
    assert torch.allclose(photometric_error(x + 0.1, x, alpha=0.0), torch.full((1, 1, 8, 8), 0.1), atol=1e-6)
    flat = torch.full((1, 1, 8, 8), 3.0)
    assert float(smoothness(flat, x)) == 0.0
    ramp = torch.arange(8.0).repeat(8, 1)[None, None] + 1
    assert float(smoothness(ramp, torch.zeros(1, 3, 8, 8))) > 0


def test_loss_is_lowest_at_the_true_depth_and_ignores_masked_pixels():
    target = plane_view(5.0, (0.0, 0.0, 0.0))
    sources = [plane_view(5.0, (0.25, 0.0, 0.5)), plane_view(5.0, (-0.25, 0.0, -0.5))]
    motions = [_motion((0.25, 0.0, 0.5)), _motion((-0.25, 0.0, -0.5))]
    losses = {d: float(view_synthesis_loss(torch.full((1, 1, H, W), d), target, sources, motions, _k(),
                                           smooth_weight=0.0, automask=False, scales=2)[0])
              for d in (3.0, 4.0, 5.0, 6.0, 8.0)}
    assert min(losses, key=losses.get) == 5.0
    keep = torch.zeros(1, 1, H, W, dtype=torch.bool)
    keep[..., :, : W // 2] = True
    half, info = view_synthesis_loss(torch.full((1, 1, H, W), 4.0), target, sources, motions, _k(), keep=keep,
                                     smooth_weight=0.0, automask=False)
    assert float(info["mask"]) <= 0.5


def test_a_motion_that_pushes_the_frame_out_of_view_is_not_rewarded():
    target = plane_view(5.0, (0.0, 0.0, 0.0))
    shift = (0.3, 0.0, 0.0)
    source = plane_view(5.0, shift)
    depth = torch.full((1, 1, H, W), 5.0)
    true = float(view_synthesis_loss(depth, target, [source], [_motion(shift)], _k(), smooth_weight=0.0)[0])
    away = float(view_synthesis_loss(depth, target, [source], [_motion((500.0, 0.0, 0.0))], _k(),
                                     smooth_weight=0.0)[0])
    assert away > 5 * true


def test_stereo_scale_recovers_a_wrong_depth_scale_from_a_constructed_pair():
    baseline = 0.5
    left = plane_view(6.0, (0.0, 0.0, 0.0))
    right = plane_view(6.0, (-baseline, 0.0, 0.0))  # T_{left->right} translates by -baseline
    assert torch.allclose(stereo_motion(torch.tensor([baseline]))[0, 0, 3], torch.tensor(-baseline))
    for wrong in (0.5, 1.0, 1.6):
        factor, factors, errors = stereo_scale(torch.full((1, 1, H, W), 6.0 * wrong), left, right, _k(), baseline)
        assert factor == pytest.approx(1 / wrong, rel=0.03), wrong
        assert len(factors) == len(errors)


def test_camera_height_from_the_road_by_hand():
    h = 1.6
    v, _ = np.mgrid[0:H, 0:W].astype(np.float64)
    road = v > CY + 2
    z = np.where(road, F * h / np.maximum(v - CY, 1e-6), 50.0)  # flat ground: z = f h / (v - cy)
    depth = torch.from_numpy(z).float()[None, None]
    mask = torch.from_numpy(road)[None, None]
    assert float(road_plane_height(depth, mask, _k())[0]) == pytest.approx(h, rel=1e-3)
    assert float(road_plane_height(depth * 2, mask, _k())[0]) == pytest.approx(2 * h, rel=1e-3)
    assert math.isnan(float(road_plane_height(depth, torch.zeros_like(mask), _k())[0]))


def test_pose_net_starts_from_driving_forward_and_axis_angle_by_hand():
    net = PoseNet(forward_prior=0.5)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        motion = net(x, x.flip(0))
    assert motion.shape == (2, 4, 4)
    assert torch.allclose(motion[:, :3, :3], torch.eye(3).expand(2, 3, 3))
    assert torch.allclose(motion[:, :3, 3], torch.tensor([0.0, 0.0, -0.5]).expand(2, 3))
    quarter = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]), torch.tensor([[1.0, 2.0, 3.0]]))
    assert torch.allclose(quarter[0, :3, :3] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert quarter[0, :3, 3].tolist() == [1.0, 2.0, 3.0]
    assert angle_between_deg(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 1.0])) == pytest.approx(45.0)


def test_rotation_has_its_gradient_at_no_rotation_so_a_fresh_pose_net_learns_to_turn():
    # dR/dv at v = 0 is the cross-product matrix: d/dv_z of R[1, 0] (sin of a turn about z) is 1.
    v = torch.zeros(1, 3, requires_grad=True)
    axis_angle_to_matrix(v, torch.zeros(1, 3))[0, 1, 0].backward()
    assert v.grad.tolist() == [[0.0, 0.0, 1.0]]
    # small, Taylor and exact branches agree with Rodrigues by hand; rotations stay orthonormal
    for angle in (1e-5, 1e-3, 0.3):
        r = axis_angle_to_matrix(torch.tensor([[0.0, angle, 0.0]], dtype=torch.float64), torch.zeros(1, 3))[0, :3, :3]
        expected = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]],
                                dtype=torch.float64)
        assert torch.allclose(r, expected, atol=1e-12)
    # a fresh pose network's rotation head gets a gradient from a loss on the rotation
    net = PoseNet()
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    net(x, x.flip(3))[0, 0, 2].backward()
    assert net.head.bias.grad[:3].abs().sum() > 0


def make_video_folder(root: Path, n: int = 5, size=(24, 32), stereo: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"{i:03d}_left.png" if stereo else f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(root / name)
        if stereo and i == 0:
            Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(root / "000_right.png")
    return root


def test_video_dataset_tuples_camera_and_stereo(tmp_path):
    folder = make_video_folder(tmp_path / "drive")
    data = VideoFrames(folder)
    assert len(data) == 3  # frames 1..3 have both neighbours
    s = data[0]
    assert s["name"] == "001" and len(s["video"]["neighbours"]) == 2 and "segmentation" not in s
    assert s["video"]["intrinsics"][0, 0] == pytest.approx(16 / math.tan(math.radians(30)))  # assumed 60 deg
    assert VideoFrames(folder, offsets=(1, 2)).targets == [0, 1, 2]
    with pytest.raises(InputError, match="too few"):
        VideoFrames(folder, offsets=(-5, 5))
    with pytest.raises(InputError, match="non-zero"):
        VideoFrames(folder, offsets=(0, 1))
    with pytest.raises(InputError, match="not a video file"):
        VideoFrames(tmp_path / "missing")
    calib = tmp_path / "camera.yaml"
    calib.write_text("Camera.fx: 700.0\nCamera.fy: 700.0\nCamera.cx: 15.5\nCamera.cy: 11.5\nCamera.bf: 350.0\n")
    k, baseline = read_camera_file(calib)
    assert baseline == pytest.approx(0.5) and k[0, 2] == 15.5
    pair = VideoFrames(make_video_folder(tmp_path / "stereo", stereo=True), offsets=(1, 2), pattern="*_left.png",
                       calib=calib, stereo=("_left", "_right"))
    assert pair[0]["video"]["baseline"] == pytest.approx(0.5) and "right" in pair[0]["video"]
    assert "right" not in pair[1]["video"]  # only frame 0 has a right view
    with pytest.raises(InputError, match="baseline"):
        VideoFrames(tmp_path / "stereo", pattern="*_left.png", stereo=("_left", "_right"))
    assert isinstance(build_dataset({"type": "video", "root": str(folder)}), VideoFrames)


def test_geometric_transforms_move_the_camera_by_hand(tmp_path):
    k = np.array([[20.0, 0, 15.5], [0, 20.0, 11.5], [0, 0, 1]])
    frame = np.zeros((24, 32, 3), np.uint8)
    sample = {"image": frame, "video": {"neighbours": [frame, frame], "intrinsics": k, "right": frame,
                                        "baseline": 0.5}, "focal": 20.0}
    half = Resize(12, 16)(sample, np.random.default_rng(0))["video"]
    assert half["intrinsics"][0, 0] == 10.0 and half["intrinsics"][0, 2] == pytest.approx(7.5)
    assert half["neighbours"][0].shape == (12, 16, 3) and half["target"].shape == (12, 16, 3)
    crop = RandomCrop(10, 12)(sample, np.random.default_rng(3))
    y0 = 11.5 - crop["video"]["intrinsics"][1, 2]
    x0 = 15.5 - crop["video"]["intrinsics"][0, 2]
    assert x0 == int(x0) and y0 == int(y0) and crop["video"]["right"].shape == (10, 12, 3)
    flipped = HorizontalFlip(p=1.0)(sample, np.random.default_rng(0))["video"]
    assert flipped["intrinsics"][0, 2] == pytest.approx(31 - 15.5) and flipped["baseline"] == -0.5
    batch = collate([dict(sample, video={**sample["video"], "target": frame}), {"image": frame, "name": "x"}])
    assert batch["video"]["has_video"].tolist() == [True, False]
    assert batch["video"]["neighbours"].shape == (2, 2, 3, 24, 32)


def _video_config(tmp_path: Path) -> dict:
    folder = make_video_folder(tmp_path / "drive", n=6, size=(32, 48))
    cfg = load_config(None, [f"data.train=[{{type: video, root: {folder}}}]", "steps=4",
                             "loss.view_synthesis.weight=1.0", "loss.view_synthesis.pose_warmup=2",
                             "loss.view_synthesis.mask_classes=[]"])
    cfg.update(output=str(tmp_path / "run"), seed=2, batch_size=2, tensorboard=False, threads=1, log_every=1)
    cfg["model"].update({"factory": "hydranet", "num_classes": 3, "decoder_channels": 16})
    cfg["augment"].update(crop_size=[32, 32], scale=None, color_jitter=0.1)
    cfg["data"]["verify"] = False
    return cfg


def test_training_on_video_alone_writes_the_pose_network_and_resumes_exactly(tmp_path):
    cfg = _video_config(tmp_path)
    full = Trainer(copy.deepcopy(cfg), log=lambda m: None)
    full.fit()
    rows = list(csv.DictReader(open(tmp_path / "run" / "train.csv")))
    assert all(np.isfinite(float(r["photometric"])) and 0 < float(r["video_mask"]) <= 1 for r in rows)
    pose = load_pose_net(tmp_path / "run" / "pose.safetensors")
    assert isinstance(pose, PoseNet)
    # the pose network learnt (the warm-up steps train it alone)
    fresh = Trainer(copy.deepcopy(cfg), log=lambda m: None).step_module.video.pose
    assert not torch.equal(pose.head.weight, fresh.head.weight)
    cfg2 = copy.deepcopy(cfg)
    cfg2["output"] = str(tmp_path / "run2")
    Trainer(copy.deepcopy(cfg2), log=lambda m: None).fit(stop_after=3)
    second = Trainer(copy.deepcopy(cfg2), log=lambda m: None)
    second.fit(resume=tmp_path / "run2" / "last.pt")
    for a, b in ((full.model.state_dict(), second.model.state_dict()),
                 (full.step_module.video.state_dict(), second.step_module.video.state_dict())):
        for key in a:
            if key.endswith("_extra_state"):  # the aligned motions (none without motion: align)
                assert a[key].keys() == b[key].keys()
                continue
            assert torch.equal(a[key], b[key]), key


def test_video_without_the_loss_is_refused(tmp_path):
    cfg = _video_config(tmp_path)
    cfg["loss"]["view_synthesis"]["weight"] = 0.0
    with pytest.raises(InputError, match="view_synthesis.weight"):
        Trainer(cfg, log=lambda m: None)
    cfg["loss"]["view_synthesis"].update(weight=1.0, mask_classes=["lamppost"])
    with pytest.raises(InputError, match="mask_classes"):
        Trainer(cfg, log=lambda m: None)


def test_the_pose_network_has_its_own_learning_rate(tmp_path):
    cfg = _video_config(tmp_path)
    cfg["optim"]["lr_pose"] = 3e-3
    trainer = Trainer(copy.deepcopy(cfg), log=lambda m: None)
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    pose_params = {id(p) for p in trainer.step_module.video.parameters()}
    assert {id(p) for p in groups["pose"]["params"]} == pose_params
    assert not pose_params & {id(p) for p in groups["decoder"]["params"]}
    assert groups["pose"]["initial_lr"] == pytest.approx(3e-3)
    cfg["optim"]["lr_pose"] = None  # unset: the decoder's rate
    groups = {g["name"]: g for g in Trainer(cfg, log=lambda m: None).optimizer.param_groups}
    assert groups["pose"]["initial_lr"] == pytest.approx(cfg["optim"]["lr_decoder"])


def test_direct_alignment_recovers_a_known_motion():
    from hydranet.training.video import align_motion

    shift = (0.25, 0.05, 0.5)
    found = align_motion(torch.full((1, 1, H, W), 5.0), plane_view(5.0, (0.0, 0.0, 0.0)), plane_view(5.0, shift),
                         _k(), None, _motion((0.0, 0.0, 0.2)), steps=150)
    assert torch.allclose(found[0, :3, 3], torch.tensor(shift), atol=0.02), found[0, :3, 3]
    angle = math.degrees(math.acos(min(1.0, (float(found[0, :3, :3].trace()) - 1) / 2)))
    assert angle < 0.25  # on one flat wall a turn of 0.1 degree looks like a 1 cm side step


def test_aligned_motions_teach_the_pose_network_once_per_pair_and_survive_a_resume():
    from hydranet.training.video import VideoLoss

    # T_{t->s} of a camera driving forward: the earlier frame sees points farther away (+z)
    shifts = [(0.25, 0.0, 0.5), (-0.25, 0.0, -0.5)]
    video = {"target": plane_view(5.0, (0.0, 0.0, 0.0)),
             "neighbours": torch.stack([plane_view(5.0, s) for s in shifts], dim=1),
             "offsets": torch.tensor([[-1, 1]]), "intrinsics": _k().double(),
             "baseline": torch.zeros(1, dtype=torch.float64), "right": torch.zeros(1, 3, H, W),
             "has_video": torch.tensor([True])}
    outputs = {"depth": torch.full((1, 1, H // 4, W // 4), 5.0, requires_grad=True),
               "segmentation": torch.zeros(1, 2, H // 4, W // 4)}
    loss_fn = VideoLoss(["road", "sky"], motion="align", align_steps=150, mask_classes=["sky"])
    loss, count = loss_fn(outputs, {"video": video})
    assert len(loss_fn.aligned) == 2 and float(count) == 1
    behind, ahead = sorted(loss_fn.aligned.values(), key=lambda m: -float(m[2, 3]))
    assert torch.allclose(behind[:3, 3], torch.tensor(shifts[0]), atol=0.03), behind[:3, 3]
    # Moving towards the plane, the frame's border leaves the view: 150 steps get most of the way.
    assert torch.allclose(ahead[:3, 3], torch.tensor(shifts[1]), atol=0.1), ahead[:3, 3]
    loss.backward()
    assert loss_fn.last_stats()["pose_vs_aligned"] > 0
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in loss_fn.pose.parameters())
    before = {k: v.clone() for k, v in loss_fn.aligned.items()}
    loss_fn(outputs, {"video": video})  # the same pair again: no new alignment
    assert loss_fn.aligned.keys() == before.keys()
    resumed = VideoLoss(["road", "sky"], motion="align")
    resumed.load_state_dict(loss_fn.state_dict())
    assert all(torch.equal(resumed.aligned[k], v) for k, v in before.items())


def test_motion_error_by_hand():
    from hydranet.training.video import motion_error

    a = axis_angle_to_matrix(torch.tensor([[0.0, 0.02, 0.0]]), torch.tensor([[0.1, 0.0, -1.0]]))
    b = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, -1.2]]))
    # |0.1| + |0.2| metres + 0.02 rad / 0.1 (the rotation vector of a small turn, first order)
    assert float(motion_error(a, b)[0]) == pytest.approx(0.3 + 0.2, abs=1e-4)
    assert float(motion_error(a, a)[0]) == 0.0
