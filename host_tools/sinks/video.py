from pathlib import Path

import cv2

from .base import Sink, SinkError

FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "mp4v"}


class VideoSink(Sink):
    """A video file (.mp4, .avi or .mkv), opened at the first frame's size."""

    def __init__(self, path: str, fps: float = 30.0):
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC:
            raise SinkError(f"video sink needs a file ending in {', '.join(FOURCC)}, got {path}")
        if not self.path.parent.is_dir():
            raise SinkError(f"folder {self.path.parent} does not exist")
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, rgb, stream, seq):
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (rgb.shape[1], rgb.shape[0]))
            if not self._writer.isOpened():
                raise SinkError(f"OpenCV cannot write {self.path}")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self):
        if self._writer is not None:
            self._writer.release()
