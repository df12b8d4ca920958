"""Latents → picture with the model's ONNX decoder, chosen by the model id each frame carries."""
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


def decoder_file(spec: manifest.ModelSpec, precision: str, providers: list[str]) -> Path:
    """The model's int8 decoder for `int8`, and for `auto` on the CPU provider (its QDQ graph is
    what the CPU's VNNI kernels run: 1.2-1.4x the fp32 decoder's frames per second for at most
    0.13 dB on Kodak, docs/decoder.md); otherwise, or when the model ships none, the fp32 decoder."""
    wants_int8 = precision == "int8" or (precision == "auto" and providers[0] == "CPUExecutionProvider")
    return spec.decoder_int8 if wants_int8 and spec.decoder_int8 is not None else spec.decoder


class OnnxDecoder:
    def __init__(self, spec: manifest.ModelSpec, threads: int = 0, concurrent: bool = False,
                 providers: list[str] | None = None, precision: str = "auto"):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        if concurrent:  # several decodes share the cores: an idle ORT thread must sleep, not spin
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.spec = spec
        providers = providers or PROVIDERS["cpu"]
        self.path = decoder_file(spec, precision, providers)
        self._session = onnxruntime.InferenceSession(str(self.path), opts, providers=providers)
        self.providers = self._session.get_providers()

    def decode(self, planes: np.ndarray, fix_point: int) -> np.ndarray:
        """int8 latent planes (C, H, W) at scale 2**-fix_point → RGB uint8 picture."""
        return self.decode_values(dequantize(planes, fix_point))

    def decode_values(self, values: np.ndarray) -> np.ndarray:
        """float32 latent values (C, H, W), e.g. a temporal stream's reconstruction → RGB uint8 picture."""
        return decoded_pixels(self._session.run(["image"], {"latent": values[None]})[0][0])


MAX_PICTURE = (4096, 4096)


class DecoderSet:
    """One decoder per model id seen, loaded on first use (streams may run different models).

    With `threads` 0 a decode gets the cores divided among the streams decoding at that moment
    (`sharing`): one stream uses them all, two streams one each on two cores. Measured on this
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
        self._decoders: dict[tuple[str, int], OnnxDecoder] = {}

    def get(self, model_id: str, latent_shape: tuple, picture: tuple[int, int], sharing: int = 1) -> OnnxDecoder:
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
                decoder = self._decoders[(model_id, threads)] = OnnxDecoder(spec, threads, self._concurrent,
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
