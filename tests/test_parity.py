"""The network computes what the authors' reference network computes (atol = rtol = 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hydranet

TOL = dict(atol=1e-4, rtol=1e-4)
CASES = ["rand_192x640", "rand_200x300"]
STAGES = ["layer1", "layer2", "layer3", "layer4", "layer5", "layer6", "layer7", "layer8",
          "crp4", "conv_adapt4", "crp3", "conv_adapt3", "crp2", "conv_adapt2", "crp1"]


@pytest.fixture(scope="module")
def model(parity_ckpt):
    return hydranet.load_model(parity_ckpt)


@pytest.fixture(scope="module")
def io(parity_dir):
    return np.load(parity_dir / "kitti_io.npz")


@pytest.mark.parametrize("case", CASES)
def test_preprocess_matches_reference_input(io, case):
    x = hydranet.preprocess(io[f"{case}__image_uint8_hwc"])
    assert x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), io[f"{case}__input_nchw_f32"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_outputs_match_reference(model, io, case):
    x = hydranet.preprocess(io[f"{case}__image_uint8_hwc"])
    with torch.no_grad():
        out = model(x)
    assert set(out) == {"segmentation", "depth"}
    np.testing.assert_allclose(out["segmentation"].numpy(), io[f"{case}__segm_logits_f32"], **TOL)
    np.testing.assert_allclose(out["depth"].numpy(), io[f"{case}__depth_raw_f32"], **TOL)
    # The float64 reference is the ground truth the float32 one approximates.
    np.testing.assert_allclose(out["segmentation"].numpy(), io[f"{case}__segm_logits_f64"], **TOL)
    np.testing.assert_allclose(out["depth"].numpy(), io[f"{case}__depth_raw_f64"], **TOL)


def test_every_intermediate_stage_matches(model, parity_dir):
    ref = np.load(parity_dir / "kitti_intermediates_rand_200x300.npz")
    captured: dict[str, np.ndarray] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(name, out.detach().numpy().copy()))
        for name in STAGES
    ]
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(ref["input_nchw_f32"]))
    finally:
        for h in hooks:
            h.remove()
    for name in STAGES:
        assert captured[name].shape == ref[name].shape, name
        np.testing.assert_allclose(captured[name], ref[name], err_msg=name, **TOL)
    np.testing.assert_allclose(out["segmentation"].numpy(), ref["segm_logits_f32"], **TOL)
    np.testing.assert_allclose(out["depth"].numpy(), ref["depth_raw_f32"], **TOL)


def test_state_dict_keys_shapes_and_order_match_reference(parity_dir):
    rows = [line.split("\t") for line in (parity_dir / "state_dict_keys_kitti.txt").read_text().splitlines()]
    state = hydranet.create_model("kitti6").state_dict()
    assert [r[0] for r in rows] == list(state)
    for key, shape, dtype in rows:
        assert str(tuple(state[key].shape)) == shape, key
        assert str(state[key].dtype).replace("torch.", "") == dtype, key
