"""Process-wide settings for the daemon's and the viewer's per-frame work, applied at start;
each was measured with caed-bench (whole-process CPU, latency beyond model time)."""
from __future__ import annotations

import ctypes
import logging

import cv2

log = logging.getLogger(__name__)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def single_threaded_opencv() -> None:
    """The daemon already works on several frames at once, and OpenCV's own pool would split a
    frame's resize or colour conversion over the same cores, its workers spinning while they
    wait (~0.6 ms more CPU per frame when the quantization was a cv2.LUT pass)."""
    cv2.setNumThreads(1)


def keep_freed_memory() -> bool:
    """Let glibc keep the megabyte blocks a frame frees for the next frame to reuse.

    By default it hands blocks of that size back to the kernel on free(), so every frame's fresh
    arrays (latents, planes, the decoder's tensors) fault their pages in again: ~0.5 ms per
    decoded frame on the host. False where the C library has no mallopt (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    kept = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))
    if not kept:
        log.debug("mallopt refused: freed frame buffers go back to the kernel")
    return kept
