from .base import Sink


class NullSink(Sink):
    """Discards frames: for measuring, and for the demo's report."""

    def write(self, rgb, stream, seq):
        pass
