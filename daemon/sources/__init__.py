"""Frame sources, chosen by a spec string: where frames come from is one config value."""
from __future__ import annotations

from pathlib import Path

from .base import EndOfStream, FrameSource, SourceError
from .cctv import CctvSource
from .capture import VideoFileSource, gstreamer_source, v4l2_source
from .images import ImageFolderSource
from .latest import CapturedFrame, LatestFrameSource
from .synthetic import SyntheticSource

RESOLUTIONS_HELP = ("native = the source's own (padded for the encoder, never cropped or resized), HxW = scaled to "
                    "cover that size and centre-cropped (e.g. 720x1280), fit = the model's input size")
SPEC_HELP = ("cctv | synthetic | v4l2:/dev/video0 | v4l2:0 | gst:PIPELINE | file:PATH | images:DIR "
             "(a bare path is a file or a folder)")

__all__ = ["CapturedFrame", "CctvSource", "EndOfStream", "FrameSource", "ImageFolderSource", "LatestFrameSource",
           "SourceError", "SyntheticSource", "VideoFileSource", "open_source", "parse_resolution", "RESOLUTIONS_HELP",
           "SPEC_HELP"]


def parse_resolution(text: str) -> tuple[int, int] | None:
    """The (H, W) a `resolution` value names, or None for native and fit; ValueError otherwise.
    The daemon's setting and caed-eval --video read it alike, so both stream the same pictures."""
    if text in ("native", "fit"):
        return None
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def open_source(spec: str, width: int, height: int, fps: float = 0.0, loop: bool = True) -> FrameSource:
    """Build (not yet open) the source a spec names; ValueError if the spec is not understood."""
    kind, _, arg = spec.partition(":")
    if spec == "cctv":
        return CctvSource(width, height, fps or 30.0)
    if spec == "synthetic":
        return SyntheticSource(width, height, fps or 30.0)
    if kind == "v4l2" and arg:
        return v4l2_source(arg)
    if kind == "gst" and arg:
        return gstreamer_source(arg)
    if kind == "file" and arg:
        return VideoFileSource(arg, loop, fps)
    if kind == "images" and arg:
        return ImageFolderSource(arg, loop, fps)
    if Path(spec).is_dir():
        return ImageFolderSource(spec, loop, fps)
    if Path(spec).is_file():
        return VideoFileSource(spec, loop, fps)
    raise ValueError(f"not a source: expected {SPEC_HELP}")
