import cv2
import numpy as np
import pytest

from caed.fixed_point import cover_and_crop, encoder_input_float, quantize, quantize_float
from caed.preprocess import Preprocessor


@pytest.mark.parametrize("fix_point", range(0, 13))
def test_quantization_is_bit_exact_to_the_float_formula_for_every_byte(fix_point):
    every_byte = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    pre = Preprocessor(16, 16, fix_point)
    out = pre(np.ascontiguousarray(every_byte[..., ::-1]))  # BGR in, RGB out
    expected = np.clip(np.round(every_byte.astype(np.float64) / 255.0 * 2 ** fix_point), -128, 127)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, expected.astype(np.int8))


def test_fix_point_7_saturates_white_at_127():
    out = np.empty((1, 3), np.int8)
    assert quantize(np.array([[0, 128, 255]], np.uint8), 7, out).tolist() == [[0, 64, 127]]


def test_quantization_writes_into_a_cropped_frames_buffer():
    frame = np.random.default_rng(2).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    crop = frame[5:37, 7:55]  # rows strided, as cover_and_crop's centre crop
    out = np.empty((32, 48, 3), np.int8)
    quantize(crop, 6, out)
    np.testing.assert_array_equal(out, quantize_float(crop, 6))
    with pytest.raises(ValueError, match="rows are contiguous"):  # a strided buffer would lose the result
        quantize(crop, 6, np.empty((32, 96, 3), np.int8)[:, ::2])


@pytest.mark.parametrize("shape", [(512, 768, 3), (720, 1280, 3), (481, 321, 3), (100, 150, 3)])
@pytest.mark.parametrize("colours", ["rgb", "bgr"])
def test_pipeline_equals_naive_resize_crop_swap_and_float_quantize(shape, colours):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    pre = Preprocessor(768, 512, 7, colours)
    out = np.empty((512, 768, 3), np.int8)
    assert pre(frame, out) is out
    fitted = cover_and_crop(frame, 768, 512)
    assert fitted.shape == (512, 768, 3)
    expected = fitted if colours == "bgr" else fitted[..., ::-1]  # frames arrive BGR
    np.testing.assert_array_equal(out, quantize_float(np.ascontiguousarray(expected), 7))


def test_an_unknown_colour_order_is_refused():
    with pytest.raises(ValueError, match="'yuv'"):
        Preprocessor(8, 8, 7, "yuv")


def test_fit_covers_then_crops_the_centre():
    frame = np.zeros((100, 400, 3), np.uint8)
    frame[:, 150:250] = 255  # a white band in the middle
    fitted = cover_and_crop(frame, 100, 100)
    assert fitted.shape == (100, 100, 3)
    assert fitted[:, 5:95].min() == 255  # the centre survives, the black sides are cropped away


def test_fit_is_a_no_op_at_the_model_size():
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    assert cover_and_crop(frame, 96, 64) is frame


def test_fit_returns_rgb_the_viewer_compares_against():
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    rgb = Preprocessor(8, 8, 7).fit(frame)
    assert (rgb[..., 2] == 200).all() and (rgb[..., 0] == 0).all()
    assert cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).tobytes() == frame.tobytes()


def test_what_evaluation_and_calibration_feed_a_float_encoder_is_the_daemons_input():
    frame = np.random.default_rng(3).integers(0, 256, (512, 768, 3), dtype=np.uint8)
    rgb = frame[..., ::-1]  # frames arrive BGR, evaluation and calibration load RGB
    for fix_point in (7, 5):
        for colours in ("bgr", "rgb"):
            daemon = Preprocessor(768, 512, fix_point, colours)(frame)
            float_input = encoder_input_float(rgb, fix_point, colours)
            np.testing.assert_array_equal(float_input, daemon / np.float32(2 ** fix_point))
            assert float_input.dtype == np.float32


@pytest.mark.parametrize("height, width", [(360, 640), (357, 638), (8, 8), (1, 1)])
def test_a_picture_is_padded_to_the_encoder_input_by_repeating_its_edges(height, width):
    """Native streaming: the picture is not resized or cropped; the encoder input around it
    continues its last row and column."""
    from caed.fixed_point import padded_size

    frame = np.random.default_rng(4).integers(0, 256, (height, width, 3), dtype=np.uint8)
    size = padded_size(height, width, 8)
    assert size[0] % 8 == 0 and size[1] % 8 == 0 and 0 <= size[0] - height < 8 and 0 <= size[1] - width < 8
    out = np.full((*size, 3), 99, np.int8)
    assert Preprocessor(width, height, 7, "bgr", input_size=size)(frame, out) is out
    picture = quantize_float(frame, 7)
    np.testing.assert_array_equal(out[:height, :width], picture)
    expected = np.pad(picture, ((0, size[0] - height), (0, size[1] - width), (0, 0)), mode="edge")
    np.testing.assert_array_equal(out, expected)


def test_an_encoder_input_smaller_than_the_picture_is_refused():
    with pytest.raises(ValueError, match="smaller than the picture"):
        Preprocessor(640, 360, 7, input_size=(352, 640))
