"""Encoder backends behind one interface (base.EncoderBackend); chosen by the `backend` setting."""
from __future__ import annotations

from .base import EncoderBackend, EncoderError, TensorInfo

BACKENDS = ("onnx", "vart")

__all__ = ["BACKENDS", "EncoderBackend", "EncoderError", "TensorInfo", "create_encoder"]


def create_encoder(backend: str, model: str, workers: int, onnx_int8: bool = False,
                   onnx_threads: int = 1, dpu_wait_s: float | None = None,
                   picture: tuple[int, int] | None = None) -> EncoderBackend:
    """Build the configured backend; EncoderError says what is missing.

    `picture`: the (H, W) to stream (None: the model's own input size). `dpu_wait_s`: vart only,
    give up if another process holds the DPU that long (None: wait)."""
    if backend == "vart":
        from .vart import VartEncoder

        return VartEncoder(model, workers=workers, picture=picture, dpu_wait_s=dpu_wait_s)
    if backend == "onnx":
        from caed import manifest

        from .onnx import OnnxEncoder

        try:
            spec = manifest.find(model)
        except (manifest.ModelNotFound, OSError, ValueError, KeyError) as e:
            raise EncoderError(f"model {model!r}: {e}") from None
        return OnnxEncoder(spec, workers=workers, int8=onnx_int8, threads=onnx_threads, picture=picture)
    raise EncoderError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
