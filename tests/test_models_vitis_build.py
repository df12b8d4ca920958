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


def test_dct8_dpu_encoder_is_the_encoder_in_dpu_operators():
    """Space-to-depth as a one-hot 8x8 stride-8 convolution gives the encoder's latents exactly,
    and the DPU build and the estimate see only convolutions."""
    import torch

    from caed_models.dct8 import DCT8

    model = DCT8().eval()
    x = torch.randint(0, 128, (1, 3, 32, 48)).float() / 128  # the daemon's input grid
    with torch.no_grad():
        expected, on_dpu = model.encoder(x).numpy(), model.dpu_encoder()(x).numpy()
    assert (expected == on_dpu).all()
    assert all(isinstance(m, torch.nn.Conv2d) for m in model.dpu_encoder())


@pytest.mark.parametrize("devices, ok", [(("USER", "DPU"), True), (("USER", "CPU", "DPU"), False),
                                         (("USER", "DPU", "CPU"), False), (("USER", "DPU", "DPU"), False)])
def test_check_xmodel_refuses_an_encoder_not_wholly_on_the_dpu(dpu_double, tmp_path, capsys, devices, ok):
    from dpu_double_xmodel import write_xmodel
    from tiny_models import write_tiny_encoder

    from caed_models.vitis_build import check_xmodel

    onnx_model = write_tiny_encoder(tmp_path / "tiny.onnx", 8, 12, 4, input_fix_point=7, latent_fix_point=3)
    path = write_xmodel(tmp_path / "m.xmodel", encoder_onnx=onnx_model, input_shape=(8, 12, 3), input_fix_point=7,
                        latent_shape=(4, 6, 4), latent_fix_point=3, devices=devices)
    assert check_xmodel(path, 1, 7) == (0 if ok else 1)
    out, err = capsys.readouterr()
    assert ("wire latent fix_point 2" in out) if ok else ("must run on the DPU alone" in err)


def test_the_manifest_beside_the_xmodel_describes_its_input_size():
    """A 1280x720 build ships a manifest with the xmodel's shapes, which the vart backend checks."""
    from caed import manifest
    from caed_models.vitis_build import manifest_for_input

    written = manifest_for_input(manifest.find("dct8-q1").manifest, 720, 1280)
    assert written["input"]["shape"] == [720, 1280, 3] and written["latent"]["shape"] == [90, 160, 192]
    assert written["input"]["fix_point"] == 7 and written["model_id"] == manifest.find("dct8-q1").model_id


def test_an_input_size_the_model_cannot_take_is_refused_before_any_tool_runs(tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text('{"target": "DPUCZDX8G_ISA1_B4096"}')
    with pytest.raises(SystemExit, match="--input 721x1280: dct8 needs a height and width that are positive "
                                         "multiples of 8"):
        main(["--model", "dct8-q1", "--input", "721x1280", "--arch-json", str(arch), "--out", str(tmp_path / "o")])
