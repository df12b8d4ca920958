"""Record what the viewer receives, exactly as it came off the wire, and play it back.

A recording is a folder of segment files and an index (docs/recording.md has the format byte by
byte). The recorder stores each received message's parts untouched, with the time the viewer
took it off the socket; replay hands the same parts to the same validation and decoding, so it
gives the live decode's pictures bit for bit. Nothing is re-encoded: a recording costs what the
wire costs (~0.1-0.3 bits per pixel for dct8), not a video's.

Recording is best effort by design: a full disk or an unwritable folder is an error that names
the path, is counted, and is retried later, but never stops the live view.
"""
from __future__ import annotations

import json
import logging
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MAGIC = b"CAEDREC\x01"  # the last byte is the format version
SEGMENT_GLOB = "segment-*.caedrec"
INDEX_NAME = "index.jsonl"
RECORD_HEAD = struct.Struct("<II")  # body length, CRC-32 of the body
BODY_HEAD = struct.Struct("<QH")  # receive time (ns, CLOCK_REALTIME), number of parts
PART_HEAD = struct.Struct("<I")  # part length
MAX_RECORD_BYTES = 64 << 20  # far above a frame (a 512x768 dct8 frame is ~10-40 kB): a length
# beyond it is damage, not data, and is never allocated
MAX_PARTS = 0xFFFF  # what the part count's u16 holds (a frame has 3)
RETRY_AFTER_S = 5.0  # after a write error, messages are counted as not recorded for this long
MAX_LOGGED_PROBLEMS = 20  # damaged-segment reports kept in the summary


class RecordingError(RuntimeError):
    """A recording folder cannot be read at all (missing, empty, not a folder)."""


def segment_name(number: int) -> str:
    return f"segment-{number:06d}.caedrec"


def pack_record(t_received_ns: int, parts: list[bytes]) -> bytes:
    """One message as a record: head (length, CRC) + body (time, part count, parts)."""
    body = b"".join([BODY_HEAD.pack(t_received_ns, len(parts))]
                    + [PART_HEAD.pack(len(p)) + bytes(p) for p in parts])
    return RECORD_HEAD.pack(len(body), zlib.crc32(body)) + body


@dataclass
class RecorderStats:
    messages: int = 0  # recorded
    bytes: int = 0
    segments: int = 0  # opened
    not_recorded: int = 0  # messages lost to errors
    errors: int = 0
    last_error: str = ""

    def summary(self, folder: Path) -> dict:
        return {"folder": str(folder), "messages": self.messages, "bytes": self.bytes, "segments": self.segments,
                "messages_not_recorded": self.not_recorded, "errors": self.errors,
                "last_error": self.last_error or None}


class Recorder:
    """Appends every message to the current segment; starts a new one past `segment_bytes`.

    Each segment gets its line in the index when it is closed (rotation or exit); a segment cut
    short by a crash has none and is still replayed up to its last whole record.
    """

    def __init__(self, folder: str, segment_bytes: int = 256 << 20, on_error: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        self.segment_bytes = segment_bytes
        self.stats = RecorderStats()
        self._on_error = on_error or (lambda message: None)
        self._file = None
        self._segment: dict = {}
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def _fail(self, what: str, path: Path, e: OSError) -> None:
        message = f"recording: cannot {what} {path}: {e.strerror or e}"
        self.stats.errors += 1
        self.stats.last_error = message
        self._retry_at = time.monotonic() + RETRY_AFTER_S
        log.error("%s (live view continues; retrying in %.0f s)", message, RETRY_AFTER_S)
        self._on_error(message)
        if self._file is not None:  # the segment may end in a partial record: replay reports it
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _next_number(self) -> int:
        numbers = [int(p.stem.split("-")[1]) for p in self.folder.glob(SEGMENT_GLOB)
                   if p.stem.split("-")[1].isdigit()]
        return max(numbers, default=0) + 1

    def _open(self) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._fail("create folder", self.folder, e)
            return False
        path = self.folder / segment_name(self._next_number())
        try:
            self._file = open(path, "xb")
            self._file.write(FILE_MAGIC)
        except OSError as e:
            self._fail("write", path, e)
            return False
        self.stats.segments += 1
        self._segment = {"segment": path.name, "messages": 0, "bytes": len(FILE_MAGIC),
                         "first_received_ns": None, "last_received_ns": None}
        return True

    def _close_segment(self) -> None:
        if self._file is None:
            return
        path = self.folder / self._segment["segment"]
        try:
            self._file.close()
        except OSError as e:
            self._file = None
            self._fail("write", path, e)
            return
        self._file = None
        index = self.folder / INDEX_NAME
        try:
            with open(index, "a") as f:
                f.write(json.dumps(self._segment) + "\n")
        except OSError as e:
            self._fail("write", index, e)

    def write(self, batch: list[list[bytes]], t_received_ns: int) -> None:
        """Record a batch as received; never raises (errors are counted and logged)."""
        if not batch:
            return
        with self._lock:
            if self._file is None and (time.monotonic() < self._retry_at or not self._open()):
                self.stats.not_recorded += len(batch)
                return
            for i, parts in enumerate(batch):
                body_bytes = BODY_HEAD.size + sum(PART_HEAD.size + len(p) for p in parts)
                if len(parts) > MAX_PARTS or body_bytes > MAX_RECORD_BYTES:
                    self.stats.not_recorded += 1  # no frame (the viewer rejects it too); not storable
                    continue
                record = pack_record(t_received_ns, parts)
                if self._segment["bytes"] + len(record) > self.segment_bytes and self._segment["messages"]:
                    self._close_segment()
                    if not self._open():
                        self.stats.not_recorded += len(batch) - i
                        return
                try:
                    self._file.write(record)
                    self._file.flush()  # a crash loses at most the record being written
                except OSError as e:
                    self.stats.not_recorded += len(batch) - i
                    self._fail("write", self.folder / self._segment["segment"], e)
                    return
                seg = self._segment
                seg["messages"] += 1
                seg["bytes"] += len(record)
                seg["first_received_ns"] = seg["first_received_ns"] or t_received_ns
                seg["last_received_ns"] = t_received_ns
                self.stats.messages += 1
                self.stats.bytes += len(record)

    def close(self) -> None:
        with self._lock:
            self._close_segment()


class RecordingSubscriber:
    """A subscriber that records every batch it hands on (the viewer needs no change to record)."""

    def __init__(self, subscriber, recorder: Recorder):
        self.subscriber, self.recorder = subscriber, recorder

    def receive(self, timeout_s: float) -> list[list[bytes]]:
        batch = self.subscriber.receive(timeout_s)
        self.recorder.write(batch, time.time_ns())
        return batch

    def ask_keyframe(self, stream: str) -> None:
        self.subscriber.ask_keyframe(stream)

    def close(self) -> None:
        self.recorder.close()
        self.subscriber.close()


# ----- reading -----
@dataclass
class ReplayStats:
    segments: int = 0
    messages: int = 0
    damaged: int = 0  # segments with a bad or truncated part (the rest of such a segment is skipped)
    problems: list = field(default_factory=list)  # the first MAX_LOGGED_PROBLEMS, as "file: what"

    def summary(self, folder: Path) -> dict:
        return {"folder": str(folder), "segments": self.segments, "messages": self.messages,
                "segments_damaged": self.damaged, "problems": self.problems}


class RecordingReader:
    """Every record of a recording folder in order, as (receive time ns, parts).

    A damaged segment (wrong magic, bad length, CRC mismatch, truncation, unreadable) is reported
    through `on_problem` with its path and byte offset, counted, and skipped from that point on:
    the records before the damage are still played.
    """

    def __init__(self, folder: str, on_problem: Callable[[str], None] | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise RecordingError(f"{folder} is not a folder")
        self.segments = sorted(self.folder.glob(SEGMENT_GLOB))
        if not self.segments:
            raise RecordingError(f"{folder} has no recording segments ({SEGMENT_GLOB})")
        self.stats = ReplayStats()
        self._on_problem = on_problem or (lambda message: None)
        self.indexed = self._read_index()

    def _problem(self, path: Path, what: str) -> None:
        message = f"{path}: {what}"
        if len(self.stats.problems) < MAX_LOGGED_PROBLEMS:
            self.stats.problems.append(message)
        log.warning("replay: %s", message)
        self._on_problem(message)

    def _read_index(self) -> dict[str, int]:
        """Messages per segment as the index lists them (a bad line is reported, not fatal)."""
        path, indexed = self.folder / INDEX_NAME, {}
        try:
            lines = path.read_text().splitlines() if path.exists() else []
        except (OSError, UnicodeDecodeError) as e:
            self._problem(path, f"unreadable index ({e}); segments are read without it")
            return indexed
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                indexed[str(entry["segment"])] = int(entry["messages"])
            except (ValueError, TypeError, KeyError) as e:
                self._problem(path, f"line {number} is not an index entry ({type(e).__name__})")
        return indexed

    def _records(self, path: Path) -> Iterator[tuple[int, list[bytes]]]:
        try:
            f = open(path, "rb")
        except OSError as e:
            self.stats.damaged += 1
            self._problem(path, f"cannot open: {e.strerror}")
            return
        count = 0
        with f:
            try:
                if f.read(len(FILE_MAGIC)) != FILE_MAGIC:
                    raise _Damage(0, "not a caed recording segment (bad magic or version)")
                while True:
                    offset = f.tell()
                    head = f.read(RECORD_HEAD.size)
                    if not head:
                        break
                    if len(head) < RECORD_HEAD.size:
                        raise _Damage(offset, "truncated record head")
                    length, crc = RECORD_HEAD.unpack(head)
                    if not BODY_HEAD.size <= length <= MAX_RECORD_BYTES:
                        raise _Damage(offset, f"record length {length} out of range")
                    body = f.read(length)
                    if len(body) < length:
                        raise _Damage(offset, f"truncated record ({len(body)} of {length} bytes)")
                    if zlib.crc32(body) != crc:
                        raise _Damage(offset, "CRC mismatch")
                    yield _split_body(body, offset)
                    count += 1
            except _Damage as d:
                self.stats.damaged += 1
                self._problem(path, f"{d.what} at byte {d.offset}; {count} records before it replayed, "
                                    "the rest of this file skipped")
                return
            except OSError as e:
                self.stats.damaged += 1
                self._problem(path, f"read error after {count} records: {e.strerror}")
                return
        expected = self.indexed.get(path.name)
        if expected is not None and expected != count:
            self._problem(path, f"index lists {expected} records, the file holds {count}")

    def __iter__(self) -> Iterator[tuple[int, list[bytes]]]:
        for path in self.segments:
            self.stats.segments += 1
            for record in self._records(path):
                self.stats.messages += 1
                yield record


class _Damage(Exception):
    def __init__(self, offset: int, what: str):
        self.offset, self.what = offset, what


def _split_body(body: bytes, offset: int) -> tuple[int, list[bytes]]:
    t_ns, n = BODY_HEAD.unpack_from(body)
    pos, parts = BODY_HEAD.size, []
    for _ in range(n):
        if pos + PART_HEAD.size > len(body):
            raise _Damage(offset, "part lengths exceed the record")
        (size,) = PART_HEAD.unpack_from(body, pos)
        pos += PART_HEAD.size
        if pos + size > len(body):
            raise _Damage(offset, "part lengths exceed the record")
        parts.append(body[pos:pos + size])
        pos += size
    if pos != len(body):
        raise _Damage(offset, "record longer than its parts")
    return t_ns, parts


class ReplaySubscriber:
    """Plays a recording through the viewer in place of the live subscriber.

    At `speed` > 0 the messages come in their recorded batches, spaced as they were received
    divided by `speed`, so latest-only decoding skips what it would have skipped live at that pace.
    At speed 0 every message comes alone, when `has_room()` says the viewer has taken the previous
    one (Viewer.has_room): every frame is decoded, as fast as the decoders go. When the recording
    ends, `finished` is set (the viewer's stop event).
    """

    def __init__(self, reader: RecordingReader, speed: float, finished: threading.Event):
        self.reader, self.speed, self.finished = reader, speed, finished
        self.has_room: Callable[[], bool] = lambda: True
        self._records = iter(reader)
        self._pending: tuple[int, list[bytes]] | None = None
        self._start: tuple[float, int] | None = None  # (monotonic, recorded ns) of the first message

    def _next(self):
        if self._pending is None:
            self._pending = next(self._records, None)
            if self._pending is None:
                self.finished.set()
        return self._pending

    def receive(self, timeout_s: float) -> list[list[bytes]]:
        record = self._next()
        if record is None:
            return []
        if self.speed == 0:
            deadline = time.monotonic() + timeout_s
            while not self.has_room():
                if time.monotonic() >= deadline:
                    return []
                time.sleep(0.002)
            self._pending = None
            return [record[1]]
        if self._start is None:
            self._start = (time.monotonic(), record[0])
        due = self._start[0] + (record[0] - self._start[1]) / 1e9 / self.speed
        wait = due - time.monotonic()
        if wait > timeout_s:
            time.sleep(timeout_s)
            return []
        time.sleep(max(wait, 0.0))
        batch, t_batch = [], record[0]
        while record is not None and record[0] == t_batch:
            batch.append(record[1])
            self._pending = None
            record = self._next()
        return batch

    def close(self) -> None:
        pass
