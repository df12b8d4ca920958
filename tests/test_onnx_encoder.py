"""OnnxEncoder, the backend of boards without a DPU: the latents it returns, and the files it refuses."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from tiny_models import write_tiny_encoder

from caed.manifest import ModelSpec, find  # noqa: E402
from caed.encoders.base import EncoderError  # noqa: E402
from caed.encoders.onnx import OnnxEncoder  # noqa: E402
from caed.wire import FrameEncoder  # noqa: E402

H, W, C = 16, 24, 4
IN_FP, LATENT_FP = 6, 3


def model(tmp_path: Path, encoder: str = "tiny.onnx", input_fix_point: int = IN_FP) -> ModelSpec:
    manifest = {"model_id": "tiny", "input": {"shape": [H, W, 3], "fix_point": input_fix_point, "colours": "bgr"},
                "latent": {"shape": [H // 2, W // 2, C], "fix_point": LATENT_FP},
                "encoder": encoder, "decoder": "decoder.onnx"}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    return find(str(tmp_path))


@pytest.fixture
def tiny(tmp_path):
    write_tiny_encoder(tmp_path / "tiny.onnx", H, W, C, input_fix_point=IN_FP, latent_fix_point=LATENT_FP)
    return model(tmp_path)


def test_latents_are_the_models_on_the_wire_grid_whatever_their_memory_order(tiny):
    frame = np.random.default_rng(0).integers(0, 2 ** IN_FP, (H, W, 3), dtype=np.int8)
    encoder = OnnxEncoder(tiny, workers=1)
    try:
        latents = encoder.submit(frame).result(timeout=30)
    finally:
        encoder.close()
    image = (frame.astype(np.float32) / 2 ** IN_FP)[None]
    planes = ort.InferenceSession(str(tiny.encoder)).run(None, {"image": image})[0][0]
    assert latents.shape == (H // 2, W // 2, C) and latents.dtype == np.int8
    np.testing.assert_array_equal(latents, np.round(planes * 2 ** LATENT_FP).astype(np.int8).transpose(1, 2, 0))
    assert np.abs(latents).max() > 0
    sender = FrameEncoder("cam0", "tiny", "zstd-planes")  # the same bytes as for NHWC latents from a DPU
    assert sender.payload(latents) == sender.payload(np.ascontiguousarray(latents))


def test_an_input_fix_point_below_0_is_refused(tmp_path):
    write_tiny_encoder(tmp_path / "tiny.onnx", H, W, C, input_fix_point=IN_FP, latent_fix_point=LATENT_FP)
    with pytest.raises(EncoderError, match="input image has fix point -1, below 0"):
        OnnxEncoder(model(tmp_path, input_fix_point=-1), workers=1)


def test_a_missing_encoder_file_is_named(tmp_path):
    with pytest.raises(EncoderError, match=r"encoder file .*nope\.onnx is missing"):
        OnnxEncoder(model(tmp_path, "nope.onnx"), workers=1)


def test_a_file_that_is_not_onnx_cannot_load(tmp_path):
    (tmp_path / "tiny.onnx").write_bytes(b"not a model")
    with pytest.raises(EncoderError, match=r"cannot load .*tiny\.onnx"):
        OnnxEncoder(model(tmp_path), workers=1)


def test_an_encoder_returning_nhwc_latents_is_refused_at_start_with_what_to_do(tiny):
    """Encoders exported before the planar layout end in a Transpose to NHWC: every frame would
    fail, so the backend refuses the file before the daemon starts streaming."""
    m = onnx.load(str(tiny.encoder))
    for node in m.graph.node:
        node.output[:] = ["planes" if name == "latent" else name for name in node.output]
    m.graph.node.append(helper.make_node("Transpose", ["planes"], ["latent"], perm=[0, 2, 3, 1]))
    m.graph.output[0].CopyFrom(helper.make_tensor_value_info("latent", onnx.TensorProto.FLOAT, [1, H // 2, W // 2, C]))
    onnx.save(m, str(tiny.encoder))
    with pytest.raises(EncoderError, match=r"not channel planes 'latent' \[1, 4, h, w\].*re-export it with caed-export"):
        OnnxEncoder(tiny, workers=1)


def test_a_fully_convolutional_model_encodes_a_picture_of_any_size_padded_to_its_multiple():
    """Native streaming: 360x638 pictures go through the shipped model padded to 360x640."""
    spec = find("dct8-q1")
    encoder = OnnxEncoder(spec, workers=1, picture=(360, 638))
    try:
        assert (encoder.picture, encoder.input.shape, encoder.latent.shape) == ((360, 638), (360, 640, 3),
                                                                                (45, 80, 192))
        latents = encoder.submit(np.zeros((360, 640, 3), np.int8)).result(timeout=60)
    finally:
        encoder.close()
    assert latents.shape == (45, 80, 192)


def test_a_model_that_cannot_take_the_picture_size_says_so(tmp_path):
    write_tiny_encoder(tmp_path / "tiny.onnx", H, W, C, input_fix_point=IN_FP, latent_fix_point=LATENT_FP)
    with pytest.raises(EncoderError, match=r"cannot encode 32x48 pictures"):
        OnnxEncoder(model(tmp_path), workers=1, picture=(30, 41))
