"""The Vitis AI build script stops with a clear message where the Vitis AI tools are absent."""
import importlib.util
import shutil

import pytest

pytest.importorskip("torch")

from caed_models.vitis_build import main  # noqa: E402


@pytest.mark.skipif(importlib.util.find_spec("pytorch_nndct") is not None or shutil.which("vai_c_xir") is not None,
                    reason="Vitis AI tools are installed here")
def test_without_vitis_ai_it_names_the_missing_tool(tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text('{"target": "DPUCZDX8G_ISA1_B4096"}')
    with pytest.raises(SystemExit) as e:
        main(["--model", "kth2020", "--arch-json", str(arch), "--out", str(tmp_path / "out")])
    assert "vai_q_pytorch" in str(e.value) and "Vitis AI docker" in str(e.value)


def test_missing_arch_json_is_reported(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--arch-json", str(tmp_path / "nope.json"), "--out", str(tmp_path / "out")])
    assert "arch.json not found" in str(e.value)


def _float_encoder(spec, x):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(str(spec.encoder)).run(None, {"image": x.transpose(0, 2, 3, 1)})[0]


@pytest.mark.parametrize("name, shift", [("kth2020", 0), ("dct8-q0", 0), ("dct8-q2", 2)])
def test_the_dpu_gets_the_shipped_encoder_with_the_rate_folded_in(name, shift):
    """The module vai_q_pytorch quantizes is the shipped float encoder, its latents divided by
    2**rate (exactly: a power of two), and the manifest beside the xmodel says so."""
    import numpy as np
    import torch

    from caed import manifest
    from caed_models.vitis_build import prepare_encoder

    spec = manifest.find(name)
    encoder, written, built = prepare_encoder(name)
    x = np.random.default_rng(0).integers(0, 128, (1, 3, 64, 96)).astype(np.float32) / 128
    with torch.no_grad():
        dpu = encoder(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(dpu * 2 ** shift, _float_encoder(spec, x), rtol=1e-5, atol=1e-4)
    assert (written["model_id"], written["dpu_latent_scale_log2"], built.name) == (spec.model_id, shift, name)


def test_an_unknown_model_is_named(tmp_path):
    from caed_models.vitis_build import prepare_encoder

    with pytest.raises(SystemExit, match="no model 'nope'"):
        prepare_encoder("nope")


@pytest.mark.parametrize("colours, red_channel", [("bgr", 2), ("rgb", 0)])
def test_calibration_images_reach_the_encoder_in_its_colour_order(tmp_path, colours, red_channel):
    import cv2
    import numpy as np

    from caed_models.vitis_build import calibration_batches

    red = np.zeros((16, 24, 3), np.uint8)
    red[..., 2] = 255  # BGR on disk
    cv2.imwrite(str(tmp_path / "red.png"), red)
    for fix_point, full in ((7, 127 / 128), (5, 1.0)):  # the input tensor's fix point: 255 saturates at 7
        (batch,) = calibration_batches(tmp_path, 1, 16, 24, colours, fix_point)
        assert batch.shape == (1, 3, 16, 24)
        assert [float(batch[0, c].max()) for c in range(3)] == [full if c == red_channel else 0.0 for c in range(3)]
