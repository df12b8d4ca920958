import threading

import cv2

from .base import Sink, SinkError


class WindowSink(Sink):
    """An OpenCV window per stream; closing with q or Esc ends the viewer.

    The decode workers only hand frames over (`write`); the receive loop's thread shows them
    (`poll`), since OpenCV's GUI back-ends (Qt, GTK) expect every call from one thread."""

    def __init__(self):
        try:
            cv2.namedWindow("caed")
            cv2.destroyWindow("caed")
        except cv2.error:
            raise SinkError("this OpenCV build has no GUI (opencv-python-headless): pip install opencv-python, "
                            "or use --sink video:FILE, png:DIR or null") from None
        self.closed = False
        self._lock = threading.Lock()
        self._newest: dict[str, object] = {}

    def write(self, rgb, stream, seq):
        with self._lock:
            self._newest[stream] = rgb

    def poll(self):
        with self._lock:
            frames, self._newest = self._newest, {}
        for stream, rgb in frames.items():
            cv2.imshow(f"caed {stream}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed = True

    def close(self):
        cv2.destroyAllWindows()
