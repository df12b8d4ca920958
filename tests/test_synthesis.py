"""The host's split decoder: the sparse synthesis kernel (caed_host._synthesis) against ONNX
Runtime's dense convolution, and the split decoder against the whole decoder.onnx."""
import numpy as np
import pytest

from arith_latents import blocky, kodak
from caed import manifest
from caed.fixed_point import dequantize
from caed_host import _synthesis
from caed_host.decoder import DecoderSet, OnnxDecoder, SplitDecoder, Synthesis, load_decoder

SPEC = manifest.find(manifest.DEFAULT_MODEL)


def onnx_synthesis(spec: manifest.ModelSpec):
    """decoder.onnx cut after its depth-to-space: the dense synthesis the kernel replaces."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime

    model = onnx.shape_inference.infer_shapes(onnx.load(str(spec.decoder)))
    cut = onnx.utils.Extractor(model).extract_model(["latent"], ["/inner/to_pixels/DepthToSpace_output_0"])
    session = onnxruntime.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda values: session.run(None, {"latent": values[None]})[0]


@pytest.fixture(scope="module")
def dense():
    return onnx_synthesis(SPEC)


@pytest.fixture(scope="module")
def sparse():
    return Synthesis(SPEC.synthesis)


def kodak_values(rate: int, count: int = 1) -> list[np.ndarray]:
    latents = kodak(count, rate)
    if not latents:
        pytest.skip("Kodak photos not on this machine")
    fix_point = manifest.find(f"dct8-q{rate}").latent_fix_point
    return [dequantize(np.ascontiguousarray(q.transpose(2, 0, 1)), fix_point) for q in latents]


@pytest.mark.parametrize("rate", [0, 1, 2, 4])
def test_sparse_synthesis_is_the_dense_convolution_on_kodak_latents(dense, sparse, rate):
    (values,) = kodak_values(rate)
    assert 0.01 < np.count_nonzero(values) / values.size < 0.2  # the sparsity the kernel is for
    picture = sparse(values)
    assert picture.shape == (1, 3, values.shape[1] * 8, values.shape[2] * 8)
    np.testing.assert_allclose(picture, dense(values), rtol=0, atol=1e-4)


@pytest.mark.parametrize("shape", [(45, 80), (1, 1), (1, 7), (9, 1), (3, 2)])
def test_odd_sizes_and_borders(dense, sparse, shape):
    h, w = shape
    values = dequantize(np.ascontiguousarray(blocky(h * 31 + w, (h, w, 192)).transpose(2, 0, 1)), -1)
    np.testing.assert_allclose(sparse(values), dense(values), rtol=0, atol=1e-4)


def test_all_zero_latents_give_the_bias_picture(dense, sparse):
    values = np.zeros((192, 6, 5), np.float32)
    picture = sparse(values)
    np.testing.assert_allclose(picture, dense(values), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(picture[0, :, :8, :8].reshape(-1), sparse.bias)  # every block is the bias


def test_dense_latents(dense, sparse):
    values = np.random.default_rng(3).uniform(-20, 20, (192, 7, 9)).astype(np.float32)
    np.testing.assert_allclose(sparse(values), dense(values), rtol=0, atol=1e-4)


def test_a_latent_view_is_taken_as_its_values(sparse):
    """The viewer's values may be any float array: a transposed view gives the same picture."""
    planes = np.ascontiguousarray(blocky(5, (6, 10, 192)).transpose(2, 0, 1))
    values = dequantize(planes, 0)
    view = np.ascontiguousarray(values.transpose(0, 2, 1)).transpose(0, 2, 1)
    np.testing.assert_array_equal(sparse(view), sparse(values))


def test_bad_shapes_and_types_are_clear_errors(sparse):
    values, picture = np.zeros((192, 4, 5), np.float32), np.empty((1, 3, 32, 40), np.float32)
    taps, bias = sparse.taps, sparse.bias
    _synthesis.synthesize(values, taps, bias, picture)
    for args in ((values[:191], taps, bias, picture),  # channels are not the taps'
                 (values, taps, bias[:96], picture),  # outputs
                 (values, taps, bias, np.empty((1, 3, 32, 48), np.float32)),  # picture width
                 (values, taps, bias, np.empty((1, 2, 32, 40), np.float32)),  # colours * block^2 != outputs
                 (values, taps[:2], bias, picture),
                 (np.zeros((192, 0, 5), np.float32), taps, bias, np.empty((1, 3, 0, 40), np.float32))):
        with pytest.raises(ValueError, match="shapes do not fit"):
            _synthesis.synthesize(*args)
    with pytest.raises(TypeError, match="float32"):
        _synthesis.synthesize(values.astype(np.float64), taps, bias, picture)
    with pytest.raises(TypeError, match="3-d"):
        _synthesis.synthesize(values[0], taps, bias, picture)
    with pytest.raises(ValueError, match="contiguous"):
        _synthesis.synthesize(values.transpose(0, 2, 1), taps, bias, np.empty((1, 3, 40, 32), np.float32))
    picture.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _synthesis.synthesize(values, taps, bias, picture)
    outputs = np.zeros((3, 3, 192, 48), np.float32)  # 3 x 4^2 outputs: not a multiple of the kernel's chunk
    with pytest.raises(ValueError, match="multiple of 96"):
        _synthesis.synthesize(values, outputs, np.zeros(48, np.float32), np.empty((1, 3, 16, 20), np.float32))


def test_a_broken_synthesis_file_is_a_clear_error(tmp_path):
    path = tmp_path / "synthesis.npz"
    np.savez(path, weight=np.zeros((192, 192, 1, 1), np.float32), bias=np.zeros(192, np.float32), block=8)
    with pytest.raises(ValueError, match="3x3 convolution"):
        Synthesis(path)
    np.savez(path, weight=np.zeros((192, 192, 3, 3), np.float32), bias=np.zeros(192, np.float32))
    with pytest.raises(ValueError, match="no block array"):
        Synthesis(path)


@pytest.mark.parametrize("rate", [0, 3])
def test_split_decoder_decodes_the_whole_decoders_pictures(rate):
    """The viewer's fp32 split path against decoder.onnx: at most one level apart (float sums in
    another order, rounded to uint8), on a real picture."""
    (values,) = kodak_values(rate)
    spec = manifest.find(f"dct8-q{rate}")
    split, whole = SplitDecoder(spec, 1, precision="fp32"), OnnxDecoder(spec, 1, precision="fp32")
    a, b = split.decode_values(values), whole.decode_values(values)
    assert a.shape == b.shape and a.dtype == np.uint8 and a.flags.c_contiguous
    assert np.abs(a.astype(int) - b).max() <= 1
    assert np.mean(a != b) < 1e-3


def test_the_viewer_runs_the_split_decoder_on_the_cpu_for_models_that_ship_it():
    decoders = DecoderSet(threads=1)
    default = decoders.get(SPEC.model_id, SPEC.latent_shape, SPEC.input_shape[:2])
    assert isinstance(default, SplitDecoder) and default.path.name == "decoder_post_int8.onnx"
    fp32 = DecoderSet(threads=1, precision="fp32").get(SPEC.model_id, SPEC.latent_shape, SPEC.input_shape[:2])
    assert isinstance(fp32, SplitDecoder) and fp32.path.name == "decoder_post.onnx"
    kth = manifest.find("kth2020")  # ships no split: its whole decoder
    assert isinstance(load_decoder(kth, 1), OnnxDecoder) and kth.synthesis is None
    values = dequantize(np.ascontiguousarray(blocky(1, (8, 12, 192)).transpose(2, 0, 1)), -1)
    assert default.decode_values(values).shape == (64, 96, 3)
