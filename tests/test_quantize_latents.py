"""The ONNX backend's output stage must equal the DPU's: scale by 2**fix_point, round half to
even, saturate to int8 (the reference is the formula in numpy, float64)."""
import numpy as np
import pytest

from caed.fixed_point import quantize_latents


def reference(latents, fix_point):
    return np.clip(np.rint(latents.astype(np.float64) * 2.0 ** fix_point), -128, 127).astype(np.int8)


@pytest.mark.parametrize("fix_point", [-3, -1, 0, 2, 5])
def test_equals_the_rounding_formula_including_halves_and_saturation(fix_point):
    rng = np.random.default_rng(fix_point + 10)
    latents = rng.laplace(0, 40 * 2.0 ** -fix_point, (6, 10, 32)).astype(np.float32)
    # exact ties at this scale (x.5 rounds to the even neighbour) and far out-of-range values
    latents.reshape(-1)[:64] = (np.arange(-32, 32) + 0.5) * 2.0 ** -fix_point
    latents.reshape(-1)[64:68] = [1e6, -1e6, 300 * 2.0 ** -fix_point, -300 * 2.0 ** -fix_point]
    out = quantize_latents(latents, fix_point)
    assert out.dtype == np.int8 and out.shape == latents.shape
    np.testing.assert_array_equal(out, reference(latents, fix_point))
    assert set(out.reshape(-1)[64:68]) == {127, -128}


def test_accepts_a_non_contiguous_view():
    latents = np.random.default_rng(0).normal(0, 20, (8, 12, 16)).astype(np.float32)
    view = latents[:, ::2]
    np.testing.assert_array_equal(quantize_latents(view, 0), reference(view, 0))
