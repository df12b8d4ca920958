import cv2

from .base import Sink, SinkError


class WindowSink(Sink):
    """An OpenCV window per stream; closing with q or Esc ends the viewer."""

    def __init__(self):
        try:
            cv2.namedWindow("caed")
            cv2.destroyWindow("caed")
        except cv2.error:
            raise SinkError("this OpenCV build has no GUI (opencv-python-headless): pip install opencv-python, "
                            "or use --sink video:FILE, png:DIR or null") from None
        self.closed = False

    def write(self, rgb, stream, seq):
        cv2.imshow(f"caed {stream}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed = True

    def close(self):
        cv2.destroyAllWindows()
