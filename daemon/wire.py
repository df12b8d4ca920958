"""The wire protocol, shared by the daemon (sender) and the viewer (receiver).

A frame is a ZeroMQ multipart message of three parts: [topic, header, payload].
- topic: b"<stream>/" so a subscriber can filter by stream;
- header: a msgpack map (at most MAX_HEADER_BYTES) with exactly the FrameHeader fields;
- payload: the int8 NHWC latents (batch 1 implied) packed by the header's codec: a keyframe's
  (ref_seq == seq) all of them, an inter frame's the blocks it replaces (caed.temporal.pack_inter).
The receiver checks every part and field against fixed limits before it allocates anything, and
reports a rejection as `Rejected(reason)` so that it can be counted by reason.
"""
from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass

import msgpack
import numpy as np

from .codecs import CODECS, Codec, PayloadError, create_codec
from .temporal import codes_positions, parse_inter

PROTOCOL_VERSION = 5  # 2: `picture` (native resolution), `ref_seq` (inter frames); 3: inter frames' codec
# payloads start from the state their reference's left (arith: its models) and code residuals their own way;
# 4: and read their reference's values (arith: contexts); 5: and code which positions were sent (arith)
READABLE_VERSIONS = (2, 3, 4, 5)  # what a receiver decodes: 2-4 for the recordings made before 5 (same header)
MAX_HEADER_BYTES = 512
MAX_DIM = 4096
MAX_PICTURE_DIM = 32768
MAX_ELEMENTS = 1 << 24
MAX_NAME = 128
FIX_POINT_RANGE = (-32, 32)
DTYPES = {"int8": np.dtype(np.int8)}
# A subscription to a stream, the only thing a receiver sends, asks its board for a keyframe: a
# viewer subscribes when it joins and again when it loses a frame of an inter-coded stream (each
# at most once this many seconds), and the board answers at most once this many seconds after its
# last keyframe, so that a crowd of viewers or a lossy link adds at most a keyframe a second.
KEYFRAME_REQUEST_GAP = 1.0

REJECT_REASONS = (
    "parts", "topic", "header_size", "header_decode", "header_fields", "version", "shape", "dtype",
    "codec", "payload", "reference",
)


class Rejected(ValueError):
    """A message that must not be used; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str):
        assert reason in REJECT_REASONS
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class FrameHeader:
    version: int
    stream: str
    seq: int  # published frame number, gapless at the sender: a gap at the receiver is loss
    frame_index: int  # the source's frame counter: gaps are frames the daemon skipped
    t_capture_ns: int  # CLOCK_REALTIME at capture on the board
    shape: tuple  # (H, W, C) of the latents
    picture: tuple  # (H, W) of the picture they encode: the decoded image's top-left corner (the rest is padding)
    dtype: str
    fix_point: int  # value = int8 * 2**-fix_point
    codec: str
    model_id: str
    ref_seq: int  # the frame this one is predicted from: seq itself for a keyframe, which needs none

    @property
    def keyframe(self) -> bool:
        return self.ref_seq == self.seq


_FIELDS = {f.name: f for f in dataclasses.fields(FrameHeader)}
_INT_FIELDS = ("version", "seq", "frame_index", "t_capture_ns", "fix_point", "ref_seq")
_STR_FIELDS = ("stream", "dtype", "codec", "model_id")


@dataclass(frozen=True)
class LatentFrame:
    header: FrameHeader
    planes: np.ndarray | None  # keyframe: int8 (C, H, W), header.shape channel-first, as the host's
    # decoder takes it; inter frame: None (its payload decodes against its reference's codec state)
    wire_bytes: int  # size of all parts as received
    payload: bytes | None = None  # inter frame: its payload, framing checked (caed.temporal.parse_inter)
    codec: Codec | None = None  # the codec of its payload (an inter frame's decodes in TemporalState.apply)
    coder_state: object = None  # keyframe: the state its payload left the codec in
    values: np.ndarray | None = None  # float32 (C, H, W): the reconstruction, once applied to the stream's
    # caed.temporal.TemporalState (what the decoder takes; for a keyframe the planes dequantized)

    @property
    def latents(self) -> np.ndarray:
        """The latents as the encoder produced them, int8 header.shape (HWC; a view)."""
        return self.planes.transpose(1, 2, 0)


def topic_for(stream: str) -> bytes:
    return stream.encode() + b"/"


class FrameEncoder:
    """Sender side: packs latents into the three message parts.

    `payload` may run on several threads at once (each gets its own codec instance), so the
    compression can happen on the encoder workers; `message` adds topic and header.
    """

    def __init__(self, stream: str, model_id: str, codec: str = "zstd", zstd_level: int = 1):
        self.stream = stream
        self.model_id = model_id
        self.codec = codec
        self._topic = topic_for(stream)
        self._make_codec = lambda: create_codec(codec, zstd_level)
        self._local = threading.local()
        self._local.codec = self._make_codec()  # fails here, at set-up, if the codec cannot work

    def payload(self, latents: np.ndarray) -> tuple[tuple, bytes]:
        """(shape, packed bytes) of int8 (H, W, C) latents, NHWC or channel planes in memory."""
        codec = getattr(self._local, "codec", None)
        if codec is None:
            codec = self._local.codec = self._make_codec()
        return latents.shape, codec.encode(latents)

    def overhead_bytes(self, shape: tuple, picture: tuple[int, int]) -> int:
        """What topic and header add to each payload of this stream: what a bitrate target must leave
        for them (169 bytes for a 480x360 dct8 stream: 9 % of 150 kbit/s at 10 fps). Measured with
        32-bit sequence numbers; a young or old stream's differ by a few bytes."""
        return sum(len(part) for part in self.message(shape, b"", picture=picture, fix_point=-4, seq=2 ** 31,
                                                      frame_index=2 ** 31, t_capture_ns=2 ** 62, ref_seq=2 ** 31 - 1))

    def message(self, shape: tuple, payload: bytes, *, picture: tuple[int, int], fix_point: int, seq: int,
                frame_index: int, t_capture_ns: int, ref_seq: int | None = None) -> list[bytes]:
        """The parts of one frame: a keyframe unless `ref_seq` names an earlier frame, whose
        reconstruction this inter frame's payload (caed.temporal.pack_inter) updates."""
        header = {
            "version": PROTOCOL_VERSION, "stream": self.stream, "seq": seq, "frame_index": frame_index,
            "t_capture_ns": t_capture_ns, "shape": list(shape), "picture": list(picture), "dtype": "int8",
            "fix_point": fix_point, "codec": self.codec, "model_id": self.model_id,
            "ref_seq": seq if ref_seq is None else ref_seq,
        }
        return [self._topic, msgpack.packb(header), payload]

    def encode(self, latents: np.ndarray, *, picture: tuple[int, int], fix_point: int, seq: int, frame_index: int,
               t_capture_ns: int) -> list[bytes]:
        return self.message(*self.payload(latents), picture=picture, fix_point=fix_point, seq=seq,
                            frame_index=frame_index, t_capture_ns=t_capture_ns)


def encode_frame(latents: np.ndarray, *, picture: tuple[int, int], fix_point: int, model_id: str,
                 codec: str = "zstd", stream: str = "eval", seq: int = 0, frame_index: int = 0,
                 t_capture_ns: int = 0) -> list[bytes]:
    """One-off packing, e.g. to measure the real size of a frame on the wire."""
    return FrameEncoder(stream, model_id, codec).encode(
        latents, picture=picture, fix_point=fix_point, seq=seq, frame_index=frame_index, t_capture_ns=t_capture_ns)


def _parse_header(raw: bytes) -> FrameHeader:
    if len(raw) > MAX_HEADER_BYTES:
        raise Rejected("header_size", f"{len(raw)} bytes > {MAX_HEADER_BYTES}")
    try:
        h = msgpack.unpackb(raw, raw=False, strict_map_key=True, max_str_len=MAX_NAME, max_bin_len=0,
                            max_array_len=32, max_map_len=32, max_ext_len=0)
    except Exception as e:  # msgpack raises many types for garbage input
        raise Rejected("header_decode", f"{type(e).__name__}: {e}") from None
    if not isinstance(h, dict):
        raise Rejected("header_decode", f"header is a {type(h).__name__}, not a map")
    if h.get("version") not in READABLE_VERSIONS:  # first: another version's header has other fields
        raise Rejected("version", f"protocol version {h.get('version')!r}, this build reads "
                                  f"{' and '.join(map(str, READABLE_VERSIONS))}")
    if set(h) != set(_FIELDS):
        missing, extra = set(_FIELDS) - set(h), set(h) - set(_FIELDS)
        raise Rejected("header_fields", f"missing {sorted(missing)}, unexpected {sorted(map(str, extra))}")
    for k in _INT_FIELDS:
        if type(h[k]) is not int:
            raise Rejected("header_fields", f"{k} must be an integer, got {type(h[k]).__name__}")
    for k in _STR_FIELDS:
        if type(h[k]) is not str or not h[k] or not h[k].isprintable():
            raise Rejected("header_fields", f"{k} must be a non-empty printable string")
    for k in ("seq", "frame_index", "t_capture_ns", "ref_seq"):
        if not 0 <= h[k] < 1 << 63:
            raise Rejected("header_fields", f"{k} = {h[k]} out of range")
    if h["ref_seq"] > h["seq"]:
        raise Rejected("reference", f"frame {h['seq']} is predicted from the later frame {h['ref_seq']}")
    if not FIX_POINT_RANGE[0] <= h["fix_point"] <= FIX_POINT_RANGE[1]:
        raise Rejected("header_fields", f"fix_point = {h['fix_point']} out of range {FIX_POINT_RANGE}")
    shape = h["shape"]
    if (type(shape) is not list or len(shape) != 3
            or not all(type(d) is int and 1 <= d <= MAX_DIM for d in shape)):
        raise Rejected("shape", f"shape must be 3 integers in [1, {MAX_DIM}], got {shape!r}")
    if math.prod(shape) > MAX_ELEMENTS:
        raise Rejected("shape", f"{math.prod(shape)} elements > {MAX_ELEMENTS}")
    picture = h["picture"]
    if (type(picture) is not list or len(picture) != 2
            or not all(type(d) is int and 1 <= d <= MAX_PICTURE_DIM for d in picture)):
        raise Rejected("shape", f"picture must be 2 integers in [1, {MAX_PICTURE_DIM}], got {picture!r}")
    if h["dtype"] not in DTYPES:
        raise Rejected("dtype", f"dtype {h['dtype']!r} not in {sorted(DTYPES)}")
    if h["codec"] not in CODECS:
        raise Rejected("codec", f"codec {h['codec']!r} not in {sorted(CODECS)}")
    return FrameHeader(**{**h, "shape": tuple(shape), "picture": tuple(picture)})


class FrameDecoder:
    """Receiver side: validates and unpacks messages (one decoder per receiving thread)."""

    def __init__(self):
        self._codecs: dict[str, Codec] = {}

    def decode(self, parts: list[bytes]) -> LatentFrame:
        if len(parts) != 3:
            raise Rejected("parts", f"{len(parts)} parts, expected 3")
        topic, raw_header, payload = (bytes(p) for p in parts)
        header = _parse_header(raw_header)
        if topic != topic_for(header.stream):
            raise Rejected("topic", f"topic {topic[:64]!r} does not match stream {header.stream!r}")
        codec = self._codecs.get(header.codec)
        if codec is None:
            try:
                codec = self._codecs[header.codec] = create_codec(header.codec)
            except ValueError as e:  # a codec whose library this host lacks
                raise Rejected("codec", str(e)) from None
        wire_bytes = sum(len(p) for p in parts)
        try:
            if not header.keyframe:
                parse_inter(payload, header.shape, codes_positions(codec, header.version))
                return LatentFrame(header, None, wire_bytes, payload=payload, codec=codec)
            planes, coder_state = codec.decode_keyframe(payload, header.shape)
        except PayloadError as e:
            raise Rejected("payload", str(e)) from None
        return LatentFrame(header, planes.view(DTYPES[header.dtype]), wire_bytes, codec=codec, coder_state=coder_state)
