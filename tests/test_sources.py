import threading
import time

import cv2
import numpy as np
import pytest

from caed.sources import (EndOfStream, FrameSource, ImageFolderSource, LatestFrameSource, SourceError,
                          SyntheticSource, VideoFileSource, open_source)


def write_video(path, frames=6, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def test_synthetic_frames_are_real_photos_deterministic_and_moving():
    a, b = SyntheticSource(96, 64), SyntheticSource(96, 64)
    f0 = a.frame(0)
    assert f0.shape == (64, 96, 3) and f0.dtype == np.uint8
    np.testing.assert_array_equal(f0, b.frame(0))
    assert not np.array_equal(a.frame(0), a.frame(30))
    assert f0.std() > 20  # photographic content, not a flat fill


def test_video_file_once_then_end(tmp_path):
    src = VideoFileSource(str(write_video(tmp_path / "v.avi")), loop=False, fps=1000)
    src.open()
    frames = [src.read() for _ in range(6)]
    assert [round(f.mean() / 20) for f in frames] == list(range(6))
    with pytest.raises(EndOfStream):
        src.read()


def test_video_file_loops(tmp_path):
    src = VideoFileSource(str(write_video(tmp_path / "v.avi", frames=3)), loop=True, fps=1000)
    src.open()
    assert [round(src.read().mean() / 20) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_missing_inputs_raise_source_error(tmp_path):
    with pytest.raises(SourceError):
        VideoFileSource(str(tmp_path / "none.avi")).open()
    with pytest.raises(SourceError):
        ImageFolderSource(str(tmp_path)).open()  # exists, but no images


def test_image_folder_in_name_order(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), 50 * i, np.uint8))
    src = ImageFolderSource(str(tmp_path), loop=False, fps=1000)
    src.open()
    assert [src.read()[0, 0, 0] for _ in range(3)] == [0, 50, 100]
    with pytest.raises(EndOfStream):
        src.read()


def test_spec_parsing(tmp_path):
    video = write_video(tmp_path / "v.avi")
    assert isinstance(open_source("synthetic", 8, 8), SyntheticSource)
    assert isinstance(open_source(f"file:{video}", 8, 8), VideoFileSource)
    assert isinstance(open_source(str(video), 8, 8), VideoFileSource)
    assert isinstance(open_source(str(tmp_path), 8, 8), ImageFolderSource)
    with pytest.raises(ValueError):
        open_source("camera", 8, 8)


class ScriptedSource(FrameSource):
    """Frames on demand; fails while `broken` is set, like an unplugged camera."""

    description = "scripted"

    def __init__(self):
        self.broken = threading.Event()
        self.opens = 0
        self.n = 0

    def open(self):
        if self.broken.is_set():
            raise SourceError("device gone")
        self.opens += 1

    def read(self):
        time.sleep(0.005)
        if self.broken.is_set():
            raise SourceError("read failed")
        self.n += 1
        return np.full((4, 4, 3), self.n % 256, np.uint8)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_latest_keeps_only_the_newest_and_counts_drops():
    latest = LatestFrameSource(ScriptedSource())
    latest.start()
    try:
        assert wait_for(lambda: latest.captured >= 20)
        frame = latest.get(1.0)
        assert frame.index >= 19  # the newest, not the first
        assert latest.dropped >= 18
        assert latest.get(0.0) is None or latest.get(0.0) is not frame
    finally:
        latest.stop()


def test_camera_that_vanishes_is_retried_and_resumes_within_2_s():
    src = ScriptedSource()
    errors = []
    latest = LatestFrameSource(src, on_error=lambda: errors.append(1))
    latest.start()
    try:
        assert latest.get(2.0) is not None
        src.broken.set()
        assert wait_for(lambda: len(errors) >= 3)
        src.broken.clear()
        back = time.monotonic()
        latest.get(0)
        assert latest.get(2.0) is not None
        assert time.monotonic() - back < 2.0
        assert src.opens >= 2 and latest.errors == len(errors)
    finally:
        latest.stop()


def test_end_of_file_stops_the_stream_only_when_asked(tmp_path):
    video = str(write_video(tmp_path / "v.avi", frames=2))
    ending = LatestFrameSource(VideoFileSource(video, loop=False, fps=1000), exit_at_eof=True)
    ending.start()
    assert wait_for(lambda: ending.get(0.1) is None and ending.ended)
    ending.stop()
    idle = LatestFrameSource(VideoFileSource(video, loop=False, fps=1000), exit_at_eof=False)
    idle.start()
    assert wait_for(lambda: idle.captured == 2)
    idle.get(0)
    time.sleep(0.2)
    assert not idle.ended and idle.get(0.1) is None
    idle.stop()


class FormatSource(ScriptedSource):
    """Frames in whatever layout a camera or GStreamer pipeline may hand over."""

    def __init__(self, frame):
        super().__init__()
        self.frame = frame

    def read(self):
        time.sleep(0.005)
        return self.frame


@pytest.mark.parametrize("frame", [np.full((4, 6), 7, np.uint8), np.full((4, 6, 1), 7, np.uint8),
                                   np.dstack([np.full((4, 6, 3), 7, np.uint8), np.zeros((4, 6), np.uint8)])])
def test_grey_and_bgra_frames_arrive_as_bgr(frame):
    latest = LatestFrameSource(FormatSource(frame))
    latest.start()
    try:
        captured = latest.get(2.0)
        assert captured.image.shape == (4, 6, 3) and captured.image.dtype == np.uint8
        assert (captured.image == 7).all() and latest.errors == 0
    finally:
        latest.stop()


@pytest.mark.parametrize("frame", [np.zeros((4, 6, 3), np.uint16), np.zeros((4, 6, 2), np.uint8),
                                   np.zeros((4, 6, 3), np.float32), np.zeros((0, 6, 3), np.uint8)])
def test_frames_the_pipeline_cannot_take_are_counted_source_errors(frame, caplog):
    errors = []
    latest = LatestFrameSource(FormatSource(frame), on_error=lambda: errors.append(1))
    latest.start()
    try:
        assert wait_for(lambda: errors)
        assert latest.get(0.2) is None and latest.captured == 0
    finally:
        latest.stop()
    assert "expected 8-bit BGR" in caplog.text


@pytest.mark.parametrize("spec", ["synthetic", "cctv", "images"])
def test_learning_the_picture_size_takes_no_frame_from_the_stream(spec, tmp_path):
    """The daemon asks a source its size before streaming; the first frame streamed must still be
    frame 0, which is what the viewer's --reference replays for frame index 0."""
    from caed.sources import open_source

    if spec == "images":
        for i in range(3):
            cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((24, 32, 3), 40 * i, np.uint8))
        spec = f"images:{tmp_path}"
    probed, fresh = open_source(spec, 32, 24), open_source(spec, 32, 24)
    assert probed.picture_size() == (24, 32)
    probed.open()
    fresh.open()
    np.testing.assert_array_equal(probed.read(), fresh.read())
