from pathlib import Path

import cv2

from .base import Sink, SinkError


class PngSink(Sink):
    """One PNG per frame, named <stream>_<seq>.png."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create {folder}: {e.strerror}") from None

    def write(self, rgb, stream, seq):
        path = self.folder / f"{stream}_{seq:08d}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise SinkError(f"cannot write {path}")
