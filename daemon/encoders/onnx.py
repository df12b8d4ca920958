"""The encoder on the CPU through ONNX Runtime: for hosts and for boards without a DPU.

It takes the same int8 input the DPU takes and returns the same int8 latents, so everything
around it is identical; with `int8=True` it runs the QDQ model whose power-of-two quantization
mimics the DPU's arithmetic.
"""
from __future__ import annotations

import numpy as np

from ..fixed_point import dequantize, padded_size, quantize_latents
from ..manifest import ModelSpec
from .base import EncoderBackend, EncoderError, TensorInfo


class OnnxEncoder(EncoderBackend):
    """Returns its latents as channel planes, which ONNX Runtime computes (the model's "latent" is
    NCHW): the planar payload codec then packs them without a transposition, which was a quarter
    of its time on dct8 latents."""

    name = "onnx"

    def __init__(self, spec: ModelSpec, workers: int = 2, int8: bool = False, threads: int = 1,
                 picture: tuple[int, int] | None = None):
        """`picture` (H, W): stream pictures of that size, the encoder's input being it padded to
        the model's size multiple (the model is fully convolutional); by default the manifest's
        input size."""
        try:
            import onnxruntime
        except ImportError:
            raise EncoderError("the onnx backend needs ONNX Runtime: pip install onnxruntime "
                               "(or use backend = \"vart\" on a board with a DPU)") from None
        self._ort = onnxruntime
        self.path = spec.encoder_int8 if int8 else spec.encoder
        if self.path is None or not self.path.is_file():
            raise EncoderError(f"model {spec.name}: encoder file {self.path} is missing")
        self.int8 = int8
        self._threads = threads
        input_hw = padded_size(*picture, spec.size_multiple) if picture else spec.input_shape[:2]
        latent_shape = spec.latent_shape if input_hw == spec.input_shape[:2] else self._latent_shape_at(input_hw)
        super().__init__(spec.model_id, TensorInfo("image", (*input_hw, 3), spec.input_fix_point),
                         TensorInfo("latent", latent_shape, spec.latent_fix_point), workers, spec.input_colours,
                         picture, spec.manifest.get("coarsest_fix_point"))

    def _latent_shape_at(self, input_hw: tuple[int, int]) -> tuple[int, int, int]:
        """The latents' (H, W, C) for an input of another size than the manifest's: one run of the
        encoder on a blank picture, which also proves the model takes that size."""
        try:
            session = self._ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            _, c, h, w = session.run(["latent"], {"image": np.zeros((1, *input_hw, 3), np.float32)})[0].shape
        except Exception as e:  # ORT raises its own exception types for bad files and shapes
            raise EncoderError(f"{self.path} cannot encode {input_hw[0]}x{input_hw[1]} pictures: {e}") from None
        return h, w, c

    def _make_runner(self):
        opts = self._ort.SessionOptions()
        opts.intra_op_num_threads = self._threads
        opts.inter_op_num_threads = 1
        try:
            session = self._ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for bad files
            raise EncoderError(f"cannot load {self.path}: {e}") from None
        self._check_interface(session)
        return session

    def _check_interface(self, session) -> None:
        """Refuse a file that would fail on every frame: at start-up the daemon can still say why."""
        inputs = {i.name: i.shape for i in session.get_inputs()}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        c = self.latent.shape[2]
        if list(inputs) != ["image"] or len(inputs["image"]) != 4 or inputs["image"][3] != 3:
            raise EncoderError(f"{self.path} takes {inputs}, not one NHWC picture 'image' [1, H, W, 3]")
        latent = outputs.get("latent")
        if latent is None or len(latent) != 4 or latent[1] != c:
            nhwc = latent is not None and len(latent) == 4 and latent[3] == c
            hint = " (an encoder that returns NHWC latents: re-export it with caed-export)" if nhwc else ""
            raise EncoderError(f"{self.path} returns {outputs}, not channel planes 'latent' [1, {c}, h, w]{hint}")

    def _run(self, session, frame: np.ndarray) -> np.ndarray:
        image = dequantize(frame[None], self.input.fix_point)
        planes = session.run(["latent"], {"image": image})[0][0]
        h, w, c = self.latent.shape
        if planes.shape != (c, h, w):
            raise EncoderError(f"{self.path} returned latents {planes.shape}, the manifest says {(c, h, w)} (C, H, W)")
        return quantize_latents(planes, self.latent.fix_point).transpose(1, 2, 0)

    def describe(self) -> dict:
        return {**super().describe(), "file": str(self.path), "int8_qdq": self.int8,
                "onnxruntime": self._ort.__version__, "threads_per_worker": self._threads,
                "note": "no DPU: the encoder runs on the CPU through ONNX Runtime"}
