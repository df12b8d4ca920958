"""dct8: starts as JPEG's transform, runs on the DPU's operators, exports one directory per rate."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from caed import manifest  # noqa: E402
from caed_models.dct8 import DCT8, analysis_matrix, dct_matrix, jpeg_steps  # noqa: E402
from caed_models.estimate import ARCHS, estimate  # noqa: E402
from caed_models.export import export  # noqa: E402
from caed_models.workload import conv_layers  # noqa: E402


def test_dct_is_orthonormal_and_the_untrained_codec_is_lossless_before_rounding():
    d = dct_matrix()
    np.testing.assert_allclose(d @ d.T, np.eye(8), atol=1e-12)
    model = DCT8().eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        y = model.encode(x)
        assert tuple(y.shape) == (1, 192, 8, 12)
        torch.testing.assert_close(model.decode(y), x, atol=1e-4, rtol=0)


def test_the_nhwc_encoder_onnx_runtime_gets_is_the_same_function():
    torch.manual_seed(1)
    model = DCT8().eval()
    torch.nn.init.normal_(model.analysis.weight, std=0.05)
    x = torch.rand(2, 48, 80, 3)
    with torch.no_grad():
        # latents reach ~100: the two summation orders differ by float32's last bit there
        torch.testing.assert_close(model.nhwc_encoder()(x), model.encoder(x.permute(0, 3, 1, 2)),
                                   atol=1e-5, rtol=1e-6)


def test_latent_zero_is_a_mid_grey_block_and_steps_follow_jpeg():
    steps = jpeg_steps(50)
    assert steps[0, 0, 0] == pytest.approx(16 / 255) and steps[1, 0, 0] == pytest.approx(17 / 255)
    w = analysis_matrix(steps)
    grey = np.full(192, 0.5)
    dc_luma = (w @ grey)[0]
    assert dc_luma == pytest.approx(8 * 0.5 / (16 / 255))


def test_dpu_work_is_one_full_width_convolution():
    layers = conv_layers(DCT8().encoder, (1, 3, 512, 768))
    assert [(l.in_channels, l.out_channels, l.out_hw) for l in layers] == [(192, 192, (64, 96))]
    result = estimate(layers, ARCHS["B2304"], 150.0)
    assert result["layers"][0]["efficiency"] == 1.0 and result["fps"] >= 60


def test_multi_rate_export(tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / "checkpoint.pt"
    model = DCT8()
    torch.save({"model_name": "dct8", "model": model.state_dict(), "step": 11}, checkpoint)
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(calibration / "a.png"), cv2.GaussianBlur(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8), (9, 9), 3))
    export("dct8", checkpoint, tmp_path / "weights" / "dct8", calibration, 1)
    specs = [manifest.find(str(tmp_path / "weights" / f"dct8-q{k}")) for k in range(5)]
    assert [s.latent_fix_point for s in specs] == [0, -1, -2, -3, -4]
    assert {s.encoder.resolve() for s in specs} == {(tmp_path / "weights" / "dct8" / "encoder.onnx").resolve()}
    assert all(s.latent_shape == (64, 96, 192) and s.model_id == "dct8-s11" for s in specs)
    assert json.loads((specs[2].directory / "model.json").read_text())["family"] == "dct8"
    x = (np.round(cv2.imread(str(calibration / "a.png"))[None] / 255 * 128) / 128).astype(np.float32)  # BGR
    fl = ort.InferenceSession(str(specs[0].encoder)).run(None, {"image": x})[0]
    assert specs[0].input_colours == "bgr"
    model.prepare_export()
    with torch.no_grad():  # PyTorch's encoder on the same picture in RGB
        y = model.encoder(torch.from_numpy(np.ascontiguousarray(x[..., ::-1])).permute(0, 3, 1, 2))
    np.testing.assert_allclose(fl, y.numpy(), atol=1e-3)
    q = ort.InferenceSession(str(specs[0].encoder_int8)).run(None, {"image": x})[0]
    assert np.mean(np.abs(np.round(fl) - q)) < 0.05  # the float encoder carries the int8 weights
    coarse = ort.InferenceSession(str(specs[2].encoder_int8)).run(None, {"image": x})[0]
    assert np.array_equal(coarse, 4 * np.round(coarse / 4))  # rate q2: the DPU rounds straight to steps of 4
    assert specs[2].encoder_int8.name == "encoder_int8_q2.onnx"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter, as onnx_io uses it
def test_the_post_network_exports_as_one_space_to_depth_and_one_depth_to_space(tmp_path):
    torch.manual_seed(2)
    model = DCT8().eval()
    for conv in model.post.convs:
        torch.nn.init.normal_(conv.weight, std=0.1)
    x = torch.rand(1, 3, 48, 80)
    path = tmp_path / "post.onnx"
    torch.onnx.export(model.post, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=18, dynamo=False)
    onnx = pytest.importorskip("onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("SpaceToDepth") == 1 and ops.count("DepthToSpace") == 1
    assert not {"Transpose", "Reshape"} & set(ops)  # no 6-D transposes left for ONNX Runtime
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(y, model.post(x).numpy(), atol=1e-5)


def test_space_to_depth_is_onnx_order_and_its_gradient_is_depth_to_space():
    from caed_models.dct8 import _DepthToSpace, _SpaceToDepth

    x = torch.rand(2, 3, 8, 12, dtype=torch.float64, requires_grad=True)
    s = _SpaceToDepth.apply(x, 2)
    for i in range(2):
        for j in range(2):
            for c in range(3):
                assert torch.equal(s[:, (i * 2 + j) * 3 + c], x[:, c, i::2, j::2])
    assert torch.equal(_DepthToSpace.apply(s, 2), x)
    assert torch.autograd.gradcheck(lambda t: _SpaceToDepth.apply(t, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: _DepthToSpace.apply(t, 2), (s.detach().requires_grad_(),))
