"""Export round trip: ONNX files agree with PyTorch, the int8 graph is DPU-style, the manifest loads."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

from onnx import numpy_helper  # noqa: E402

from caed.manifest import find  # noqa: E402
from caed_models.export import export  # noqa: E402
from caed_models.kth2020 import KTH2020  # noqa: E402
from caed_models.qdq import best_fix_point  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(1)
    model = KTH2020().eval()
    checkpoint = root / "checkpoint.pt"
    torch.save({"model_name": "kth2020", "model": model.state_dict(), "step": 7}, checkpoint)
    calibration = root / "calibration"
    calibration.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        smooth = cv2.GaussianBlur(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8), (7, 7), 2)
        cv2.imwrite(str(calibration / f"{k}.png"), smooth)
    out = root / "weights"
    manifest = export("kth2020", checkpoint, out, calibration, 2)
    return model, out, manifest


def _image(h, w, seed=0):
    q = np.random.default_rng(seed).integers(0, 128, (1, h, w, 3))
    return (q / 128.0).astype(np.float32)


def _run(path, name, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {name: x})[0]


def test_manifest_matches_the_daemon_contract(exported):
    _, out, manifest = exported
    spec = find(str(out))
    assert spec.model_id == "kth2020-s7"
    assert spec.input_shape == (512, 768, 3) and spec.input_fix_point == 7 and spec.input_colours == "bgr"
    assert spec.latent_shape == (62, 94, 32) and spec.latent_fix_point == manifest["latent"]["fix_point"]
    assert all(p.is_file() for p in (spec.encoder, spec.encoder_int8, spec.decoder))
    assert json.loads((out / "model.json").read_text())["macs"]["encoder"] == 3975122304


@pytest.mark.parametrize("hw", [(512, 768), (128, 256)])
def test_onnx_matches_pytorch(exported, hw):
    model, out, _ = exported
    x = _image(*hw)
    latent = _run(out / "encoder.onnx", "image", np.ascontiguousarray(x[..., ::-1]))  # the ONNX encoder takes BGR
    with torch.no_grad():
        y = model.encode(torch.from_numpy(x).permute(0, 3, 1, 2))
        x_hat = model.decode(y).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(latent, y.numpy(), atol=1e-4)  # channel planes
    image = _run(out / "decoder.onnx", "latent", latent)
    assert image.shape == (1, *hw, 3)
    np.testing.assert_allclose(image, x_hat, atol=1e-4)


def test_int8_graph_uses_power_of_two_scales_and_zero_offsets(exported):
    _, out, _ = exported
    graph = onnx.load(out / "encoder_int8.onnx").graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) == 2 * 6 + 2 * 5  # Q/DQ at input and 5 activations, DQ on 5 weights and 5 biases
    for node in qdq:
        scale, zero = inits[node.input[1]], inits[node.input[2]]
        assert scale.size == 1 and zero.dtype == np.int8 and int(zero) == 0
        assert float(np.log2(scale)).is_integer()
    first = graph.node[0]
    assert first.op_type == "QuantizeLinear" and first.input[0] == "image"
    assert float(inits[first.input[1]]) == 2.0 ** -7


def test_int8_encoder_stays_close_to_float(exported):
    _, out, manifest = exported
    x = _image(128, 128, seed=3)
    ref = _run(out / "encoder.onnx", "image", x)
    q = _run(out / "encoder_int8.onnx", "image", x)
    lsb = 2.0 ** -manifest["latent"]["fix_point"]
    assert np.allclose(q / lsb, np.round(q / lsb))  # on the wire's grid
    assert np.mean(np.abs(q - ref)) < 2 * lsb


def test_best_fix_point_is_the_largest_that_holds_the_range_unless_clipping_pays():
    uniform = np.random.default_rng(0).uniform(-1.0, 1.0, 10_000)
    assert best_fix_point(0.9 * uniform) == 7  # 127/128 holds 0.9
    assert best_fix_point(1.9 * uniform) == 6
    with_outlier = np.append(0.05 * uniform, 1.0)  # max-based would pick 6; one clipped value is cheaper
    assert best_fix_point(with_outlier) > 6


@pytest.fixture(scope="module")
def exported_dct8(tmp_path_factory, exported):
    from caed_models.dct8 import DCT8

    root = tmp_path_factory.mktemp("export_dct8")
    torch.manual_seed(2)
    model = DCT8().eval()
    with torch.no_grad():  # residual stages start as identity: give them something to compute
        for p in model.post.parameters():
            p.add_(0.05 * torch.randn_like(p))
    checkpoint = root / "checkpoint.pt"
    torch.save({"model_name": "dct8", "model": model.state_dict(), "step": 9}, checkpoint)
    _, kth_out, _ = exported
    manifest = export("dct8", checkpoint, root / "dct8", kth_out.parent / "calibration", 2)
    return model, root, checkpoint, manifest


def test_split_decoder_is_the_decoder(exported_dct8):
    """synthesis.npz through the host's sparse kernel, then decoder_post.onnx: decoder.onnx's
    picture (NCHW where decoder.onnx gives NHWC); every rate's model.json names both files."""
    from caed_host.decoder import Synthesis

    model, root, _, _ = exported_dct8
    spec = find(str(root / "dct8-q2"))
    assert spec.synthesis.resolve() == (root / "dct8" / "synthesis.npz").resolve()
    assert spec.decoder_post.resolve() == (root / "dct8" / "decoder_post.onnx").resolve()
    rng = np.random.default_rng(4)
    latent = (rng.integers(-3, 4, (1, 192, 5, 7)) * (rng.random((1, 192, 5, 7)) < 0.1)).astype(np.float32)
    picture = _run(spec.decoder_post, "synthesized", Synthesis(spec.synthesis)(latent[0]))
    whole = _run(spec.decoder, "latent", latent)
    np.testing.assert_allclose(picture.transpose(0, 2, 3, 1), whole, rtol=0, atol=1e-4)


def test_decoder_only_rewrites_the_decoder_of_the_same_checkpoint_and_leaves_the_encoders(exported_dct8, tmp_path):
    from caed_models.export import export_decoder_only

    model, root, checkpoint, _ = exported_dct8
    encoders = {p.name: p.read_bytes() for p in (root / "dct8").glob("encoder*.onnx")}
    (root / "dct8" / "synthesis.npz").unlink()
    (root / "dct8" / "decoder.onnx").unlink()
    manifests = export_decoder_only("dct8", checkpoint, root / "dct8")
    assert len(manifests) == 5 and (root / "dct8" / "synthesis.npz").is_file()
    spec = find(str(root / "dct8-q0"))
    assert spec.synthesis.is_file() and spec.decoder.is_file()
    assert spec.manifest["macs"]["decoder"] > 0 and spec.manifest["params"]["decoder"] > 0
    assert {p.name: p.read_bytes() for p in (root / "dct8").glob("encoder*.onnx")} == encoders
    other = tmp_path / "checkpoint.pt"
    torch.save({"model_name": "dct8", "model": model.state_dict(), "step": 10}, other)
    with pytest.raises(ValueError, match="exported at step 9"):
        export_decoder_only("dct8", other, root / "dct8")
