"""caed-eval on two small images, and the metrics it is built on."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

from caed.wire import encode_frame  # noqa: E402
from caed_models.evaluate import ModelCodec, main  # noqa: E402
from caed_models.export import export  # noqa: E402
from caed_models.kth2020 import KTH2020  # noqa: E402
from caed_models.metrics import bd_rate, ms_ssim  # noqa: E402

from caed.fixed_point import psnr  # noqa: E402

from caed import manifest  # noqa: E402


def _smooth_image(rng, h, w):
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (9, 9), 3)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(5)
    images = root / "images"
    images.mkdir()
    for k, (h, w) in enumerate([(170, 180), (176, 200)]):  # 170, 180: no multiples of 8, padded to 176, 184
        cv2.imwrite(str(images / f"{k}.png"), _smooth_image(rng, h, w))
    torch.manual_seed(2)
    checkpoint = root / "checkpoint.pt"
    torch.save({"model_name": "kth2020", "model": KTH2020().state_dict(), "step": 3}, checkpoint)
    export("kth2020", checkpoint, root / "tiny", images, 2)
    return root


def test_eval_writes_rd_points_and_plot(setup, capsys):
    out, png = setup / "rd.json", setup / "rd.png"
    rc = main(["--images", str(setup / "images"), "--json", str(out), "--plot", str(png),
               "--models", str(setup / "tiny"), "--coarsen", "0,2"])
    assert rc == 0 and png.stat().st_size > 0
    result = json.loads(out.read_text())
    assert set(result["codecs"]) == {"jpeg", "webp", "tiny", "tiny-float"}
    jpeg = result["codecs"]["jpeg"]
    assert all(a["bpp"] < b["bpp"] and a["psnr"] < b["psnr"] for a, b in zip(jpeg, jpeg[1:]))
    coarse, fine = result["codecs"]["tiny"]  # sorted by bpp
    assert coarse["fix_point"] == fine["fix_point"] - 2 and coarse["bpp"] < fine["bpp"]
    assert set(result["bd_rate_vs_jpeg"]["webp"]) == {"psnr", "ms_ssim"}


def test_model_bpp_is_the_wire_message_size(setup):
    spec = manifest.find(str(setup / "tiny"))
    model = ModelCodec(spec)
    rgb = cv2.imread(str(setup / "images" / "0.png"))[:, :, ::-1]
    assert rgb.shape == (170, 180, 3)  # coded padded to 176x184, measured at its own size
    latent = model.latents(rgb, "int8")
    point = model.point(rgb, latent, spec.latent_fix_point, "zstd")
    planes = np.clip(np.round(latent[0] * 2.0 ** spec.latent_fix_point), -128, 127).astype(np.int8)
    parts = encode_frame(planes.transpose(1, 2, 0), picture=(170, 180), fix_point=spec.latent_fix_point,
                         model_id=spec.model_id, codec="zstd")
    assert point.bpp == pytest.approx(8 * sum(map(len, parts)) / (170 * 180))


def test_eval_rejects_a_folder_without_images(tmp_path, capsys):
    assert main(["--images", str(tmp_path), "--json", str(tmp_path / "x.json")]) == 2
    assert "no images" in capsys.readouterr().err


def test_metrics_on_identical_and_degraded_images():
    rng = np.random.default_rng(0)
    a = _smooth_image(rng, 64, 80)
    noisy = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, a) == float("inf") and ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert 25 < psnr(a, noisy) < 40 and ms_ssim(a, noisy) < 0.999


def test_bd_rate_of_half_the_rate_is_minus_fifty_percent():
    anchor = [(0.25, 28.0), (0.5, 31.0), (1.0, 34.0), (2.0, 37.0)]
    assert bd_rate(anchor, [(r / 2, q) for r, q in anchor]) == pytest.approx(-50.0)
    assert bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(anchor, [(0.1, 20.0), (0.2, 22.0)]) is None  # no overlap in quality


def test_model_codec_decodes_with_the_viewers_decoder():
    """caed-eval measures what caed-view shows: the split decoder on the CPU (int8 decoder_post by
    default, fp32 on request) for a model that ships it, the whole decoder otherwise."""
    from caed_host.decoder import OnnxDecoder, SplitDecoder

    spec = manifest.find(manifest.DEFAULT_MODEL)
    default, fp32 = ModelCodec(spec).decoder, ModelCodec(spec, "fp32").decoder
    assert isinstance(default, SplitDecoder) and default.path.name == "decoder_post_int8.onnx"
    assert isinstance(fp32, SplitDecoder) and fp32.path.name == "decoder_post.onnx"
    assert isinstance(ModelCodec(manifest.find("kth2020")).decoder, OnnxDecoder)
