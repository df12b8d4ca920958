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
        image = self._session.run(["image"], {"latent": dequantize(planes[None], fix_point)})[0][0]
        return decoded_pixels(image)


MAX_PICTURE = (4096, 4096)


class DecoderSet:
    """One decoder per model id seen, loaded on first use (streams may run different models)."""

    def __init__(self, override: str = "", threads: int = 0, max_picture: tuple[int, int] = MAX_PICTURE):
        """`max_picture` (H, W): the largest picture this viewer decodes; a larger stream is
        refused (`shape`) before its latents reach the decoder, whose memory grows with them."""
        self._override = override
        self._threads = threads
        self._max_picture = max_picture
        self._decoders: dict[str, OnnxDecoder] = {}

    def get(self, model_id: str, latent_shape: tuple, picture: tuple[int, int]) -> OnnxDecoder:
        decoder = self._decoders.get(model_id)
        if decoder is None:
            try:
                spec = manifest.find(self._override or model_id)
            except manifest.ModelNotFound as e:
                raise UnknownModel(str(e)) from None
            decoder = self._decoders[model_id] = OnnxDecoder(spec, self._threads)
        c = decoder.spec.latent_shape[2]
        if latent_shape[2] != c:
            raise Rejected("shape", f"model {model_id}: {latent_shape[2]} latent channels, decoder expects {c}")
        max_h, max_w = self._max_picture
        if picture[0] > max_h or picture[1] > max_w:
            raise Rejected("shape", f"picture {picture[0]}x{picture[1]} exceeds this viewer's maximum {max_h}x{max_w}")
        # The decoder's activations grow with the latent area: bound it by the maximum picture's,
        # whatever the picture size claims (a latent position covers at least one size multiple).
        multiple = decoder.spec.size_multiple
        if latent_shape[0] > -(-max_h // multiple) or latent_shape[1] > -(-max_w // multiple):
            raise Rejected("shape", f"model {model_id}: latents {latent_shape[0]}x{latent_shape[1]} exceed what a "
                                    f"{max_h}x{max_w} picture needs")
        return decoder
