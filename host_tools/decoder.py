"""Latents → picture with the model's ONNX decoder, chosen by the model id each frame carries."""
from __future__ import annotations

import numpy as np

from caed import manifest
from caed.fixed_point import decoded_pixels, dequantize
from caed.wire import Rejected


class UnknownModel(LookupError):
    """A frame names a model this host has no decoder for."""


class OnnxDecoder:
    def __init__(self, spec: manifest.ModelSpec, threads: int = 0):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        self.spec = spec
        self._session = onnxruntime.InferenceSession(str(spec.decoder), opts, providers=["CPUExecutionProvider"])

    def decode(self, planes: np.ndarray, fix_point: int) -> np.ndarray:
        """int8 latent planes (C, H, W) at scale 2**-fix_point → RGB uint8 picture."""
        return self.decode_values(dequantize(planes, fix_point))

    def decode_values(self, values: np.ndarray) -> np.ndarray:
        """float32 latent values (C, H, W), e.g. a temporal stream's reconstruction → RGB uint8 picture."""
        return decoded_pixels(self._session.run(["image"], {"latent": values[None]})[0][0])


class DecoderSet:
    """One decoder per model id seen, loaded on first use (streams may run different models)."""

    def __init__(self, override: str = "", threads: int = 0):
        self._override = override
        self._threads = threads
        self._decoders: dict[str, OnnxDecoder] = {}

    def get(self, model_id: str, latent_shape: tuple) -> OnnxDecoder:
        decoder = self._decoders.get(model_id)
        if decoder is None:
            try:
                spec = manifest.find(self._override or model_id)
            except manifest.ModelNotFound as e:
                raise UnknownModel(str(e)) from None
            decoder = self._decoders[model_id] = OnnxDecoder(spec, self._threads)
        h, w, c = decoder.spec.latent_shape
        if latent_shape[2] != c:
            raise Rejected("shape", f"model {model_id}: {latent_shape[2]} latent channels, decoder expects {c}")
        if latent_shape[0] * latent_shape[1] > h * w:
            # The decoder's activations grow with the latent area: bound it by the model's own frame.
            raise Rejected("shape", f"model {model_id}: latents {latent_shape[0]}x{latent_shape[1]} exceed the "
                                    f"model's {h}x{w}")
        return decoder
