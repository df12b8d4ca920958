"""The process-wide settings the daemon and the viewer apply at start."""
import platform

import cv2
import pytest

from caed.tuning import keep_freed_memory, single_threaded_opencv


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_keeping_freed_frame_buffers():
    assert keep_freed_memory() is True


def test_opencv_runs_each_call_on_the_calling_thread():
    before = cv2.getNumThreads()
    try:
        single_threaded_opencv()
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)
