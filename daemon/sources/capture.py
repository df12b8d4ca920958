"""Sources read through OpenCV's VideoCapture: V4L2 cameras, GStreamer pipelines, video files."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .base import EndOfStream, FrameSource, Pacer, SourceError


class CameraSource(FrameSource):
    """A live device or pipeline: it paces itself, and a failed read means the device is gone."""

    def __init__(self, target: str | int, api: int, description: str):
        self._target, self._api = target, api
        self.description = description
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        self._cap = cv2.VideoCapture(self._target, self._api)
        if not self._cap.isOpened():
            self.close()
            raise SourceError(f"cannot open {self.description}")

    def read(self) -> np.ndarray:
        ok, frame = self._cap.read() if self._cap is not None else (False, None)
        if not ok or frame is None:
            raise SourceError(f"{self.description} returned no frame")
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def v4l2_source(device: str) -> CameraSource:
    target: str | int = int(device) if device.isdigit() else device
    return CameraSource(target, cv2.CAP_V4L2, f"V4L2 camera {device}")


def gstreamer_source(pipeline: str) -> CameraSource:
    if "GStreamer:                   YES" not in cv2.getBuildInformation():
        raise SourceError("this OpenCV build has no GStreamer support (on the board use python3-opencv "
                          "built with PACKAGECONFIG gstreamer)")
    return CameraSource(pipeline, cv2.CAP_GSTREAMER, f"GStreamer pipeline '{pipeline}'")


class VideoFileSource(FrameSource):
    """A file played at its own frame rate (or `fps`), once or in a loop."""

    def __init__(self, path: str, loop: bool = True, fps: float = 0.0):
        self.path = Path(path)
        self.loop = loop
        self._fps = fps
        self.description = f"video file {path}" + (" (looping)" if loop else "")
        self._cap: cv2.VideoCapture | None = None
        self._pacer: Pacer | None = None

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self.close()
            raise SourceError(f"cannot decode video file {self.path}")
        if self._pacer is None:
            native = self._cap.get(cv2.CAP_PROP_FPS)
            self._pacer = Pacer(self._fps if self._fps > 0 else (native if 0 < native < 1000 else 30.0))

    def read(self) -> np.ndarray:
        self._pacer.wait()
        ok, frame = self._cap.read()
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok:
            if self._cap.get(cv2.CAP_PROP_POS_FRAMES) == 0:
                raise SourceError(f"video file {self.path} has no decodable frames")
            raise EndOfStream(str(self.path))
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
