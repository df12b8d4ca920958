"""Where decoded frames go, chosen by a spec string."""
from .base import Sink, SinkError
from .null import NullSink
from .png import PngSink
from .video import VideoSink
from .window import WindowSink

SPEC_HELP = "window | video:FILE.mp4|.avi|.mkv | png:DIR | null"

__all__ = ["NullSink", "PngSink", "Sink", "SinkError", "VideoSink", "WindowSink", "open_sink", "SPEC_HELP"]


def open_sink(spec: str) -> Sink:
    kind, _, arg = spec.partition(":")
    if spec == "window":
        return WindowSink()
    if spec == "null":
        return NullSink()
    if kind == "video" and arg:
        return VideoSink(arg)
    if kind == "png" and arg:
        return PngSink(arg)
    raise SinkError(f"not a sink: expected {SPEC_HELP}")
