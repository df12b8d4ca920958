"""Latents → picture with the model's decoder, chosen by the model id each frame carries: on the CPU
the sparse synthesis kernel + decoder_post.onnx where the model ships that split, else its whole
ONNX decoder."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from caed import manifest
from caed.fixed_point import decoded_pixels, dequantize, padded_size
from caed.wire import Rejected


PROVIDERS = {  # --provider choice → ONNX Runtime execution providers, in order of preference
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "openvino": ["OpenVINOExecutionProvider", "CPUExecutionProvider"],
}
PROVIDER_CHOICES = ("auto",) + tuple(PROVIDERS)
PRECISIONS = ("auto", "fp32", "int8")


class UnknownModel(LookupError):
    """A frame names a model this host has no decoder for."""


class ProviderError(RuntimeError):
    """The execution provider asked for is not in this ONNX Runtime build."""


def providers_for(choice: str) -> list[str]:
    """The providers to run a decoder with: `auto` takes CUDA, then OpenVINO, when this ONNX
    Runtime build has them (neither is ever required), else the CPU; a named one must be there."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if choice == "auto":
        return next((PROVIDERS[k] for k in ("cuda", "openvino") if PROVIDERS[k][0] in available), PROVIDERS["cpu"])
    if PROVIDERS[choice][0] not in available:
        raise ProviderError(f"{PROVIDERS[choice][0]} is not in this onnxruntime build (it has {', '.join(available)}); "
                            f"install onnxruntime-gpu or onnxruntime-openvino, or use --provider cpu")
    return PROVIDERS[choice]


def _wants_int8(precision: str, providers: list[str]) -> bool:
    """int8 on request, and for `auto` on the CPU provider (its QDQ graphs are what the CPU's VNNI
    kernels run: docs/decoder.md)."""
    return precision == "int8" or (precision == "auto" and providers[0] == "CPUExecutionProvider")


def decoder_file(spec: manifest.ModelSpec, precision: str, providers: list[str]) -> Path:
    """The full decoder a non-split decode runs: the model's int8 decoder when int8 is wanted (1.2-1.4x
    the fp32 decoder's frames per second for at most 0.13 dB on Kodak), else, or when the model
    ships none, the fp32 decoder."""
    return spec.decoder_int8 if _wants_int8(precision, providers) and spec.decoder_int8 is not None else spec.decoder


def _session(path: Path, threads: int, concurrent: bool, providers: list[str]):
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    if concurrent:  # several decodes share the cores: an idle ORT thread must sleep, not spin
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), opts, providers=providers)


class _LatentDecoder:
    def decode(self, planes: np.ndarray, fix_point: int) -> np.ndarray:
        """int8 latent planes (C, H, W) at scale 2**-fix_point → RGB uint8 picture."""
        return self.decode_values(dequantize(planes, fix_point))


class OnnxDecoder(_LatentDecoder):
    """The model's whole decoder in ONNX Runtime (decoder.onnx or decoder_int8.onnx)."""

    def __init__(self, spec: manifest.ModelSpec, threads: int = 0, concurrent: bool = False,
                 providers: list[str] | None = None, precision: str = "auto"):
        self.spec = spec
        providers = providers or PROVIDERS["cpu"]
        self.path = decoder_file(spec, precision, providers)
        self._session = _session(self.path, threads, concurrent, providers)
        self.providers = self._session.get_providers()

    def decode_values(self, values: np.ndarray) -> np.ndarray:
        """float32 latent values (C, H, W), e.g. a temporal stream's reconstruction → RGB uint8 picture."""
        return decoded_pixels(self._session.run(["image"], {"latent": values[None]})[0][0])


class Synthesis:
    """The decoder's synthesis convolution + depth-to-space as the sparse C kernel (caed_host._synthesis):
    only the non-zero latent values are multiplied, ~95 % of dct8's being zeros. On dct8's Kodak
    latents it takes 2.7-9.7 ms of one thread's CPU time at q4-q0 (7.0 ms at the default q1),
    where ONNX Runtime's dense convolution takes ~38 ms (docs/decoder.md)."""

    def __init__(self, path: Path):
        weights = np.load(path)
        missing = {"weight", "bias", "block"} - set(weights.files)
        if missing:
            raise ValueError(f"{path}: no {', '.join(sorted(missing))} array (caed-export writes weight, bias, block)")
        weight, bias, block = weights["weight"], weights["bias"], int(weights["block"])
        if weight.ndim != 4 or weight.shape[2:] != (3, 3) or bias.shape != weight.shape[:1] or block < 1 \
                or weight.shape[0] % (block * block):
            raise ValueError(f"{path}: a 3x3 convolution's weight and bias and its depth-to-space block expected, "
                             f"got {weight.shape}, {bias.shape}, {block}")
        self.taps = np.ascontiguousarray(weight.transpose(2, 3, 1, 0), np.float32)  # (3, 3, C, outputs): rows
        self.bias = np.ascontiguousarray(bias, np.float32)
        self.block, self.colours = block, weight.shape[0] // (block * block)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """float32 latent values (C, H, W) → the picture (1, colours, H * block, W * block)."""
        from ._synthesis import synthesize

        _, h, w = values.shape
        picture = np.empty((1, self.colours, h * self.block, w * self.block), np.float32)
        synthesize(np.ascontiguousarray(values, np.float32), self.taps, self.bias, picture)
        return picture


class SplitDecoder(_LatentDecoder):
    """The sparse synthesis, then the rest of the decoder (decoder_post.onnx, or its int8 form,
    picture to picture) in ONNX Runtime: what the viewer runs on the CPU for a model that ships
    the split (docs/decoder.md)."""

    def __init__(self, spec: manifest.ModelSpec, threads: int = 0, concurrent: bool = False,
                 providers: list[str] | None = None, precision: str = "auto"):
        self.spec = spec
        providers = providers or PROVIDERS["cpu"]
        int8 = _wants_int8(precision, providers) and spec.decoder_post_int8 is not None
        self.path = spec.decoder_post_int8 if int8 else spec.decoder_post
        self.synthesis = Synthesis(spec.synthesis)
        self._session = _session(self.path, threads, concurrent, providers)
        self.providers = self._session.get_providers()

    def decode_values(self, values: np.ndarray) -> np.ndarray:
        return self.finish(self.synthesis(values))

    def finish(self, synthesized: np.ndarray) -> np.ndarray:
        """A synthesized picture (1, colours, H, W) through the post-network → the (H, W, colours)
        uint8 picture."""
        picture = self._session.run(["picture"], {"synthesized": synthesized})[0][0]
        return np.ascontiguousarray(decoded_pixels(picture).transpose(1, 2, 0))  # rounded in planes, then HWC


def load_decoder(spec: manifest.ModelSpec, threads: int = 0, concurrent: bool = False,
                 providers: list[str] | None = None, precision: str = "auto") -> OnnxDecoder | SplitDecoder:
    """The decoder the viewer runs for `spec`: the split one on the CPU provider when the model ships
    it (sparse synthesis, 4-14x less CPU than ONNX Runtime's dense convolution), else the whole
    decoder.onnx (CUDA and OpenVINO run the dense graph as it is; kth2020 has no split)."""
    providers = providers or PROVIDERS["cpu"]
    split = spec.synthesis is not None and spec.decoder_post is not None
    kind = SplitDecoder if split and providers[0] == "CPUExecutionProvider" else OnnxDecoder
    return kind(spec, threads, concurrent, providers, precision)


MAX_PICTURE = (4096, 4096)


class DecoderSet:
    """One decoder per model id seen, loaded on first use (streams may run different models).

    With `threads` 0 a decode gets the cores divided among the decodes under way (`sharing`: of
    different streams, or consecutive frames of one): one decode uses them all, two one each on two
    cores. Measured on this
    2-core machine under load, two concurrent 1-thread decodes gave 7.4 frames/s in total where
    two concurrent 2-thread decodes gave 4.3 (threads of one run wait for the other's), while one
    stream alone decodes in 39 ms on two threads against 70 ms on one (issue 15). So a model has a
    session per thread count it was asked for (at most two on two cores).
    """

    def __init__(self, override: str = "", threads: int = 0, concurrent: bool = False,
                 providers: list[str] | None = None, precision: str = "auto",
                 max_picture: tuple[int, int] = MAX_PICTURE):
        """`max_picture` (H, W): the largest picture this viewer decodes; a larger stream is
        refused (`shape`) before its latents reach the decoder, whose memory grows with them."""
        self._override, self._precision = override, precision
        self._threads, self._concurrent, self._providers = threads, concurrent, providers
        self._max_picture = max_picture
        self._lock = threading.Lock()  # the decode workers ask for decoders concurrently
        self._decoders: dict[tuple[str, int], OnnxDecoder | SplitDecoder] = {}

    def get(self, model_id: str, latent_shape: tuple, picture: tuple[int, int],
            sharing: int = 1) -> OnnxDecoder | SplitDecoder:
        max_h, max_w = self._max_picture
        if picture[0] > max_h or picture[1] > max_w:  # before any decoder is loaded for it
            raise Rejected("shape", f"picture {picture[0]}x{picture[1]} exceeds this viewer's maximum {max_h}x{max_w}")
        threads = self._threads or max(1, (os.cpu_count() or 1) // max(1, sharing))
        with self._lock:
            decoder = self._decoders.get((model_id, threads))
            if decoder is None:
                try:
                    spec = manifest.find(self._override or model_id)
                except manifest.ModelNotFound as e:
                    raise UnknownModel(str(e)) from None
                decoder = self._decoders[(model_id, threads)] = load_decoder(spec, threads, self._concurrent,
                                                                             self._providers, self._precision)
        c = decoder.spec.latent_shape[2]
        if latent_shape[2] != c:
            raise Rejected("shape", f"model {model_id}: {latent_shape[2]} latent channels, decoder expects {c}")
        # The decoder's activations grow with the latent area: bound it by the maximum picture's,
        # whatever the picture size claims (a latent position covers at least one size multiple).
        multiple = decoder.spec.size_multiple
        padded_h, padded_w = padded_size(max_h, max_w, multiple)
        if latent_shape[0] > padded_h // multiple or latent_shape[1] > padded_w // multiple:
            raise Rejected("shape", f"model {model_id}: latents {latent_shape[0]}x{latent_shape[1]} exceed what a "
                                    f"{max_h}x{max_w} picture needs")
        return decoder
