"""Temporal coding in the latent domain: keyframes, inter frames that update only the latent
blocks that changed, and the viewer's side of it (docs/temporal.md; docs/wire.md specifies the wire).

A fixed camera repeats most of its picture. The board holds the exact int8 latents every viewer
reconstructs, so it can predict in the latent domain with no decoder of its own: per latent
position (a *block*, one 8x8 pixel block = C values for dct8) an inter frame either keeps the
reference's block or sends the block's residual against it on the frame's quantizer grid. The
residual tensor has the frame's shape, zeros where nothing is sent, and goes through the
stream's own payload codec: temporal coding works with any codec, and one may code residuals its
own way, carrying state from the reference's payload and reading the reference's values, which
both ends hold (`arith` runs its models on along the chain, predicts residual DCs as 0, since
protocol 4 takes contexts from the reference and since protocol 5 codes which blocks were sent,
then only theirs: docs/wire.md arith §7).

Reference structure: by default every inter frame is predicted from the previous frame
(`REFERENCES`; the header's `ref_seq` names the reference). Predicting from the keyframe instead
makes a lost inter frame cost nothing, but people walking across a fixed view make most blocks
differ from the keyframe within a second: on 60 frames of pedestrians_720p it sent 32-51 % of the
blocks and cost 17 % more than coding every frame alone (BD-rate), where the previous frame as
reference sent 3-16 % and cost less than intra. A lost frame then stops the picture until the
next keyframe (the viewer counts it and keeps the last correct picture); `reference =
"keyframe"` remains for scenes where that matters more.

Per block the encoder decides by rate and distortion: send when the squared error the reference
would leave against the current latents, both on the frame's grid (identical quantization hides
most sensor noise; after a rate step, on the coarser of the two grids), less a noise floor,
exceeds lambda times the block's estimated bits. The
noise floor is twice the typical block's error in a still scene (the median block's, followed
down at once and up by at most 2 % a frame, so a pan or a change of light is sent, not
ignored). A block that was sent in the previous frame keeps being sent, with keyframe
references, until it clearly matches the keyframe again (hysteresis: no flicker between the
keyframe's picture and the current one). A frame that would send most blocks is a keyframe.
On a grid coarser than the model's, a sent block's residuals round towards the reference (a dead
zone), and the decision counts what that leaves: values that only crossed a rounding boundary
are not worth a block (TemporalEncoder._sent_blocks).

The rate: the stream's model runs at its latent fix point F0; a frame at a coarser fix point
F < F0 requantizes the int8 latents by caed.fixed_point's rule (round half to even, saturate).
Every block keeps the fix point it was sent at, so the reconstruction is held as int16 at F0
(exact: q * 2**(F0 - F)); consecutive frames may differ in F (`RateControl`).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
import zstandard

from . import _temporal
from .codecs import Codec, PayloadError
from .codecs.base import Reference, pixel_order
from .fixed_point import dequantize

REFERENCES = ("previous", "keyframe")
# seconds between a stream's scheduled keyframes unless configured (the daemon's keyframe_interval);
# the board's config and make demo schedule one every 5 s, which a bitrate holds less steadily
# (docs/temporal.md, "How often a keyframe")
KEYFRAME_INTERVAL_S = 2.0
# the most fix point steps below the model's a frame may be coded at: dct8's five rates (a model's
# manifest may allow fewer, `coarsest_fix_point`: the coarsest its decoder learnt)
MAX_RATE = 4
# lambda per squared quantizer step: 0.3x the high-rate slope of a uniform quantizer (2 ln2 / 12),
# the best BD-rate against caed-intra of 0.1x, 0.3x and 1x on both clips (caed-eval --video)
LAMBDA_PER_STEP2 = 0.036
NOISE_FLOOR_FACTOR = 2.0  # a block's reference error below this many times the noise level is noise
NOISE_RISE = 1.02  # per frame: the noise level follows the median block's error down at once, up slowly
RATE_HYSTERESIS = 0.1  # see TemporalEncoder._rate_step
INT16_MAX = 32767
SCENE_CUT_SHARE = 0.6  # an inter frame that would send more than this share of the blocks is a keyframe instead
KEYFRAME_COARSENING = 1  # fix point steps a keyframe may go below the rate control's to fit its window
KEYFRAME_REFINEMENT = 2  # fix point steps a keyframe of a still scene is coded finer than its frame's rate
KEYFRAME_REFINEMENT_BITRATE = 1  # the same under a bitrate, where two made the keyframes pump (_keyframe)
STILL_SCENE_SHARE = 0.1  # a still scene: the inter frames since the last keyframe sent at most this share of their blocks
HYSTERESIS = 0.5  # a block sent last frame stays sent while its gain exceeds this share of the threshold
# A sent block's residuals round towards the reference: |r| < 2/3 of a step is 0 (H.264 encoders'
# 1/3 rounding offset), where the frame is coarser than the model's latents (TemporalEncoder._sent_blocks;
# the rounding itself is daemon/csrc/temporal.c's)
DEAD_ZONE_OFFSET = _temporal.DEAD_ZONE_OFFSET
MAP_LEVEL = 3  # zstd level of the zeroed-block map (a few bytes; level hardly matters for time)


def requantize(latents: np.ndarray, from_fix_point: int, to_fix_point: int) -> np.ndarray:
    """int8 latents at `from_fix_point` as int8 at the coarser `to_fix_point` (<= from), by the
    wire's own rounding rule (caed.fixed_point.quantize_latents: half to even), in one OpenCV pass
    over the int8 values (q * 2**-k is exact in float32, and saturate_cast rounds half to even):
    0.17 ms for a 512x768 frame here, 0.52 ms through a float32 copy of the tensor."""
    if to_fix_point == from_fix_point:
        return latents
    if to_fix_point > from_fix_point:
        raise ValueError(f"cannot requantize latents at fix point {from_fix_point} to the finer {to_fix_point}")
    flat = np.ascontiguousarray(latents).reshape(-1, latents.shape[-1])
    return cv2.addWeighted(flat, 2.0 ** (to_fix_point - from_fix_point), flat, 0.0, 0.0,
                           dtype=cv2.CV_8S).reshape(latents.shape)


# ----- the inter payload -----
def pack_inter(codec: Codec, values: np.ndarray, sent: np.ndarray, sent_values: np.ndarray,
               start: object, reference: Reference | None = None) -> tuple[bytes, object]:
    """Inter payload: uint32 LE length L of the zeroed-block map, the map (L bytes: a zstd frame of
    numpy.packbits(zeroed), H*W bits row-major, or L = 0 when no sent block is all zero), then the
    stream codec's payload of `values` as residuals (Codec.encode_residuals, from `start`, the
    state the reference frame's payload left, its contexts reading `reference`): int8 (H, W, C),
    sent blocks hold their new values,
    all other blocks zero. A block is sent if it holds a non-zero value or its map bit is set; so
    the map carries only the rare sent blocks that are all zero, and an all-zero block costs the
    codec next to nothing. A codec that codes the positions sent itself (Codec.codes_positions,
    protocol 5) is given `sent` and the map stays empty. `sent_values`: values's sent blocks, (n, C).
    Returns the payload and the codec's state after it."""
    zmap = b""
    if not codec.codes_positions:
        zeroed = np.zeros(sent.shape, bool)
        zeroed[sent] = ~sent_values.any(axis=1)
        if zeroed.any():
            zmap = zstandard.ZstdCompressor(level=MAP_LEVEL).compress(np.packbits(zeroed).tobytes())
    coded, end = codec.encode_residuals(values, start, reference, sent if codec.codes_positions else None)
    return len(zmap).to_bytes(4, "little") + zmap + coded, end


def codes_positions(codec: Codec, version: int) -> bool:
    """Whether `codec`'s inter payloads in protocol `version` code the positions sent themselves."""
    return version >= 5 and codec.codes_positions


def parse_inter(payload: bytes, shape: tuple[int, int, int], positions: bool = False) -> tuple[np.ndarray | None, bytes]:
    """(zeroed (H, W) bool or None, the codec's payload) of an inter payload, or PayloadError: its
    framing and map, checked without the state its codec payload needs. `positions`: its codec
    codes the positions sent (codes_positions), and a map is refused."""
    h, w, _ = shape
    if len(payload) < 4:
        raise PayloadError(f"inter payload is {len(payload)} bytes, shorter than its map length")
    length = int.from_bytes(payload[:4], "little")
    if length > len(payload) - 4:
        raise PayloadError(f"inter payload declares a {length}-byte block map, only {len(payload) - 4} bytes follow")
    if not length:
        return None, payload[4:]
    if positions:
        raise PayloadError("inter payload carries a block map, and its codec codes the positions sent")
    nbytes = (h * w + 7) // 8
    try:
        raw = zstandard.ZstdDecompressor().decompress(payload[4:4 + length], max_output_size=nbytes)
    except zstandard.ZstdError as e:
        raise PayloadError(f"inter block map: {e}") from None
    if len(raw) != nbytes:
        raise PayloadError(f"inter block map has {len(raw)} bytes, {nbytes} expected for {h}x{w} blocks")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8))
    if bits[h * w:].any():
        raise PayloadError("inter block map marks blocks beyond the latent frame")
    return bits[:h * w].reshape(h, w).astype(bool), payload[4 + length:]


def unpack_inter(codec: Codec, payload: bytes, shape: tuple[int, int, int], start: object,
                 residuals: bool = True, reference: Reference | None = None,
                 positions: bool = False) -> tuple[np.ndarray, np.ndarray, object]:
    """(planes (C, H, W) int8, sent (H, W) bool, the codec's state after it) of an inter payload
    whose reference frame's payload left the codec in `start` (and whose values are `reference`,
    protocol 4), or PayloadError. `residuals` False: a protocol 2 payload, which coded the residual
    tensor like any tensor (and leaves no state). `positions`: a protocol 5 payload of a codec that
    codes the positions sent (Codec.codes_positions), whose map must be empty."""
    zeroed, coded = parse_inter(payload, shape, positions)
    if positions:
        planes, end, sent = codec.decode_residuals(coded, shape, start, reference, positions=True)
        return planes, sent, end
    planes, end = (codec.decode_residuals(coded, shape, start, reference)[:2] if residuals
                   else (codec.decode(coded, shape), None))
    sent = planes.any(axis=0)
    if zeroed is not None:
        if (zeroed & sent).any():
            raise PayloadError("inter block map marks a block as zeroed that carries values")
        sent |= zeroed
    return planes, sent, end


# ----- the encoder -----
@dataclass
class CodedFrame:
    """One frame as the temporal encoder coded it."""

    index: int  # frames coded so far before this one: the stream's seq when every coded frame is published
    ref_index: int  # the index of the frame this one is predicted from (= index for a keyframe)
    fix_point: int
    payload: bytes
    blocks_sent: int
    blocks: int

    @property
    def keyframe(self) -> bool:
        return self.ref_index == self.index


@dataclass
class RateControl:
    """Holds a bitrate by steering one continuous knob, theta = log2 of the quantizer step
    relative to the model's finest (fix point F0 - round(theta); lambda follows 4**theta, so the
    block decisions move the rate smoothly between two fix points).

    It predicts the bits of a keyframe interval from the last keyframe and a short average of the
    inter frames since (people entering the view raise the inter frames at once; a plain average
    over the interval reacted a whole interval late, and a 1 s average swung with every keyframe,
    a visible 2 s pumping), and integrates the log of predicted over target into theta, plus a
    small term for the debt of the last interval so the long-run mean is exact. Gain and the
    largest step are per second, so a 10 fps stream follows a crowd as fast as a 30 fps one, and
    it coarsens twice as fast as it refines (vtest fitted to 768x512 at 300 kbit/s: 10 s windows
    within 10 % 97.8 % -> 98.4 %, caed-eval --video --bitrate). What it cannot smooth, a keyframe
    that would overrun the last 10 s, TemporalEncoder._keyframe codes coarser (fits()).
    """

    bits_per_frame: float
    window: int  # frames: the keyframe interval
    max_theta: float
    fps: float
    theta: float = 1.0
    key_bits: float = 0.0
    inter_bits: float = 0.0
    debt: float = 0.0
    recent: deque = field(default_factory=deque)  # the bits of the frames of the last WINDOW_S, less one
    recent_bits: int = 0
    WINDOW_S = 10.0  # what a target is held over (issue 14: every 10 s window within 10 %)
    WINDOW_MARGIN = 0.05  # fits(): the share over the target a window may reach before a keyframe is coarsened
    GAIN_PER_S = 1.5
    MAX_STEP_PER_S = 1.5
    INTER_AVERAGE = 0.3  # weight of the newest inter frame in the running average
    DEBT_GAIN = 0.3
    OVERSHOOT_FACTOR = 2.0

    @property
    def window_frames(self) -> int:
        return max(1, round(self.WINDOW_S * self.fps))

    def fits(self, bits: int) -> bool:
        """Whether a frame of `bits` keeps the window of frames it ends within WINDOW_MARGIN of the target."""
        return self.recent_bits + bits <= (1 + self.WINDOW_MARGIN) * self.window_frames * self.bits_per_frame

    def update(self, bits: int, keyframe: bool, coarsened_to: int | None = None) -> None:
        """After each frame. `coarsened_to`: a keyframe had to be coded that many fix points below
        the model's to fit the window (TemporalEncoder._keyframe), so the rate was too fine for
        what the camera sees now: the following frames start from there (theta at least there),
        and that keyframe's size, smaller than one at the rate asked for, is not taken as what
        keyframes cost (it would pull theta back down)."""
        self.recent.append(bits)
        self.recent_bits += bits
        while len(self.recent) >= self.window_frames:
            self.recent_bits -= self.recent.popleft()
        if coarsened_to is not None:
            self.theta = max(self.theta, float(coarsened_to))
        elif keyframe:
            self.key_bits = float(bits)
            self.inter_bits = self.inter_bits or bits / 8
        else:
            self.inter_bits += self.INTER_AVERAGE * (bits - self.inter_bits)
        predicted = (self.key_bits + (self.window - 1) * self.inter_bits) / self.window
        bound = self.window * self.bits_per_frame
        self.debt = float(np.clip(self.debt + bits - self.bits_per_frame, -bound, bound))
        error = math.log2(max(predicted, 1.0) / self.bits_per_frame) + self.DEBT_GAIN * self.debt / bound
        # coarsen twice as fast as refine: an overshoot (people walking in) is what breaks a window
        faster = self.OVERSHOOT_FACTOR if error > 0 else 1.0
        step = faster * self.MAX_STEP_PER_S / self.fps
        self.theta = float(np.clip(self.theta + np.clip(faster * self.GAIN_PER_S / self.fps * error, -step, step),
                                   0.0, self.max_theta))


class TemporalEncoder:
    """Codes a stream's latents one frame after another (one instance per stream, one thread).

    `latents`: int8 (H, W, C) at the model's fix point `fix_point` (the finest rate); each frame is
    coded at fix point `fix_point - rate` (a fixed `rate` >= 0), or, with `bitrate_bps`, at what
    the rate control picks per frame, never coarser than `fix_point - max_rate`. The bitrate is
    the wire's: the payloads get what the `overhead_bytes` of every message (topic and header,
    wire.FrameEncoder.overhead_bytes) leave of it; ValueError if they leave nothing.
    """

    def __init__(self, codec: Codec, shape: tuple[int, int, int], fix_point: int, keyframe_interval: int,
                 reference: str = "previous", rate: int = 0, bitrate_bps: float = 0.0, fps: float = 30.0,
                 max_rate: int = MAX_RATE, lambda_scale: float = 1.0, overhead_bytes: int = 0):
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        if keyframe_interval < 1:
            raise ValueError(f"keyframe_interval must be >= 1 frame, got {keyframe_interval}")
        self.codec, self.shape, self.fix_point = codec, tuple(shape), fix_point
        self.keyframe_interval, self.reference, self.rate = keyframe_interval, reference, rate
        self.lambda_scale = lambda_scale
        payload_bits = bitrate_bps / fps - 8 * overhead_bytes
        if bitrate_bps and payload_bits <= 0:
            raise ValueError(f"bitrate {bitrate_bps / 1e3:g} kbit/s leaves nothing for the latents: the messages' "
                             f"topic and header alone take {8e-3 * overhead_bytes * fps:g} kbit/s at {fps:g} fps")
        # with a bitrate, start mid-range: the first keyframe at the finest rate could eat seconds of budget
        self.control = (RateControl(payload_bits, keyframe_interval, float(max_rate), fps, theta=max_rate / 2)
                        if bitrate_bps else None)
        h, w, c = shape
        self.index = 0
        self.key_index = -1
        self.reconstruction = np.zeros((h * w, c), np.int16)  # at self.fix_point, what every viewer holds
        self._key = np.zeros((h * w, c), np.int16)
        # the codec's state after the last frame's payload and after the keyframe's: where an inter
        # frame's payload starts, from its reference's (Codec.encode_residuals)
        self._coder_state = self._key_coder_state = None
        self._last_fix_point: int | None = None  # the last coded frame's
        self._sent_last = np.zeros(h * w, bool)
        self._blocks_sent_since_key = self._blocks_since_key = 0  # by the inter frames since the last keyframe
        self._step = int(round(self.theta))
        self._noise = math.inf  # the typical block's reference error in a still scene (sensor noise)
        self._bits_per_value = 1.0  # the codec's bits per non-zero value in the last frame: the rate estimate
        # An inter frame's arrays, written in place every frame. Allocated afresh for the whole frame,
        # the temporal encoder took 11.9-12.8 ms of process CPU a frame on pedestrians_720p at its own
        # size (dct8-q0 at rate 1, 120 frames, glibc keeping freed blocks as the daemon has it:
        # caed.tuning; at dct8-q1's own rate 7.6-8.1 ms), in place 10.4-11.3 ms (6.7-7.3 ms); without
        # that glibc setting (a library user's process) ~1,280 page faults a frame fell to ~65.
        self._coarse = np.empty((h * w, c), np.int8)  # the latents on the frame's grid (_temporal)
        self._errors = np.empty(h * w, np.float64)  # every block's skip error (_temporal)
        self._nonzero = np.empty(h * w, np.int32)  # every block's non-zero values on the frame's grid (_temporal)
        self._values = np.zeros((h * w, c), np.int8)  # the residual tensor handed to the codec

    @property
    def theta(self) -> float:
        return self.control.theta if self.control else float(self.rate)

    def _rate_step(self) -> int:
        """Fix point steps below the model's for this frame: round(theta), except that with the rate
        control a step changes only once theta is RATE_HYSTERESIS past the middle: a theta that
        hovers at x.5 would flip every block sent between two grids (164 flips in 30 s of
        pedestrians at 2 Mbit/s without it, 10-20 with)."""
        if self.control and abs(self.theta - self._step) <= 0.5 + RATE_HYSTERESIS:
            return self._step
        self._step = int(round(self.theta))
        return self._step

    def values(self) -> np.ndarray:
        """The reconstruction as the float32 (C, H, W) latents the decoder takes: every viewer
        that holds this frame's reference decodes exactly these values."""
        h, w, c = self.shape
        return dequantize(self.reconstruction.T.reshape(c, h, w), self.fix_point)

    @property
    def keyframe_due(self) -> bool:
        """The next frame is a keyframe by the schedule: the stream's first, or an interval on."""
        return self.key_index < 0 or self.index - self.key_index >= self.keyframe_interval

    def encode(self, latents: np.ndarray, force_keyframe: bool = False) -> CodedFrame:
        fix_point = self.fix_point - self._rate_step()
        latents = pixel_order(latents).reshape(latents.shape)  # NHWC: a block is a row of C values
        keyframe = force_keyframe or self.keyframe_due
        if keyframe:
            coded = self._keyframe(latents, fix_point)
        else:
            coded = self._inter(latents, fix_point, self.theta)
        if self.control:
            coarsened = coded.fix_point < fix_point  # a keyframe coded coarser to fit its window
            self.control.update(8 * len(coded.payload), coded.keyframe,
                                self.fix_point - coded.fix_point if coarsened else None)
        self._last_fix_point = coded.fix_point
        self.index += 1
        return coded

    def _keyframe(self, latents: np.ndarray, fix_point: int) -> CodedFrame:
        """The latents (NHWC, at the model's fix point) as a keyframe at the frame's `fix_point`, in
        a still scene finer, as far as the model goes (KEYFRAME_REFINEMENT, x264's I/P quantizer
        ratio): what a keyframe holds lasts in every block the inter frames keep. Two fix points
        at a fixed rate, one under a bitrate: with two, caed-eval's caed-temporal (150 frames)
        reads +28.4 % against x264-live on vtest where one read +39.4 %, and +124.3 % where it
        read +124.7 % on pedestrians_720p (BD-rate, PSNR); but under the rate control two made
        vtest's keyframes pump (150 kbit/s: 1.74 dB above the frame before
        on average against 1.12, PSNR std 1.57 against 0.88 dB, 95 % of the 10 s windows within
        10 % against 100 %). Still: the inter
        frames since the last keyframe sent at most STILL_SCENE_SHARE of their blocks, as on vtest
        (4-8 % below the finest rate) and not on pedestrians_720p (9-23 %); a stream's first
        keyframe, with no frame before it to step from, counts as still. Refining every
        keyframe, BD-rate (PSNR) against none, dct8-q0 latents at rates 0..4: -15.2 % on vtest (60
        frames), -1.7 % on pedestrians (40 frames); but under the rate control pedestrians'
        keyframes then stepped 2.7 dB above the frames before them on average (0.9 without),
        at the same mean PSNR: its people replace the sharper blocks within the interval.
        With the rate control it goes coarser, down to one fix point below `fix_point`, if it would
        take the last 10 s past the target (RateControl.fits): after a quiet stretch the
        controller's rate is fine, and a group walking in made the next keyframe at that rate
        overrun the window (vtest at its own 480x360 and 150 kbit/s: 97.4 % of the 10 s windows
        within 10 % without this, 100 % with it; a keyframe allowed further down held no more
        windows). The price is a deeper dip when a crowd walks in: PSNR std 1.21 -> 1.46 dB,
        largest step between frames 0.3 s apart 3.2 -> 5.4 dB. Each try is one more payload
        encode, on a few keyframes."""
        h, w, c = self.shape
        coarsest = max(self.fix_point - self.control.max_theta, fix_point - KEYFRAME_COARSENING) if self.control else 0
        if self._blocks_sent_since_key <= STILL_SCENE_SHARE * self._blocks_since_key:  # (also with no frame before)
            refinement = KEYFRAME_REFINEMENT_BITRATE if self.control else KEYFRAME_REFINEMENT
            fix_point = min(fix_point + refinement, self.fix_point)
        self._blocks_sent_since_key = self._blocks_since_key = 0
        coarse = requantize(latents, self.fix_point, fix_point)
        payload, coder_state = self.codec.encode_keyframe(coarse)
        while self.control and not self.control.fits(8 * len(payload)) and fix_point > coarsest:
            fix_point -= 1
            coarse = requantize(latents, self.fix_point, fix_point)
            payload, coder_state = self.codec.encode_keyframe(coarse)
            self._step = self.fix_point - fix_point  # the inter frames that follow: on its grid, or all would differ
        self._bits_per_value = 8 * len(payload) / max(1, int(np.count_nonzero(coarse)))
        self.reconstruction = self._scaled(np.ascontiguousarray(coarse).reshape(-1, c), fix_point)
        self._key = self.reconstruction.copy()
        self._coder_state = self._key_coder_state = coder_state
        self.key_index = self.index
        self._sent_last[:] = True
        return CodedFrame(self.index, self.index, fix_point, payload, h * w, h * w)

    def _scaled(self, q: np.ndarray, fix_point: int) -> np.ndarray:
        """int8 values at `fix_point` as int16 at the model's fix point (exact)."""
        return q.astype(np.int16) << (self.fix_point - fix_point)

    def _sent_blocks(self, latents: np.ndarray, reference: np.ndarray, rows: np.ndarray, target: np.ndarray,
                     fix_point: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """For the blocks `rows` of the model's int8 `latents` and int16 `reference` (positions, C):
        the reference on the grid of `fix_point` (int16, rounded half to even: what a residual at that
        fix point adds to), the int8 residuals and, below the model's fix point, the squared error
        sending leaves against `target` (the frame's values on its grid), on the model's scale. One C
        pass (caed._temporal.sent_blocks, daemon/csrc/temporal.c).

        On a grid coarser than the model's the residuals round with a dead zone, |r| < 2/3 of a step
        to 0 (DEAD_ZONE_OFFSET), where plain rounding would give the latents' own grid values; _inter
        counts what that leaves as the error of sending, so a block whose values only crossed a
        rounding boundary is not sent. BD-rate (PSNR) against plain rounding, dct8-q0 latents at fix
        points 0..-4 (the finest point is the same): -14.6 % on vtest (60 frames) and -4.4 % on
        pedestrians_720p (40 frames); rounding at 0.2 instead of 1/3 -17.2 % and -0.7 %, at 0.45
        -11.2 % and -3.2 %; the dead zone in the decision only (residuals plainly rounded) -9.6 % and
        -3.9 %; its error measured against the model's latents instead of the grid's (the textbook
        gain) +4.5 % and +7.6 %."""
        m, c = len(rows), latents.shape[1]
        steps = self.fix_point - fix_point
        base, residual = np.empty((m, c), np.int16), np.empty((m, c), np.int8)
        left = np.empty(m) if steps else None
        _temporal.sent_blocks(latents, reference, target if steps else None, rows, steps, base, residual, left)
        return base, residual, left

    def _inter(self, latents: np.ndarray, fix_point: int, theta: float) -> CodedFrame:
        h, w, c = self.shape
        flat = np.ascontiguousarray(latents).reshape(-1, c)
        reference = self._key if self.reference == "keyframe" else self.reconstruction
        # What skipping costs is measured against what sending would give (the coarse latents):
        # identical quantization hides most sensor noise (it rarely moves a value across a decision
        # boundary), the noise floor takes out the rest. Both on the coarser of this frame's grid
        # and the last frame's: after a rate step every block would differ on the new grid, so the
        # frame became a keyframe (the scene-cut rule below) and the picture jumped a whole fix
        # point, 45 times in 30 s of pedestrians at 2000 kbit/s; this way a step down keeps the finer
        # blocks and a step up refines the blocks that change. The current latents take the
        # reference's path there (to the last frame's grid, then on), so that an unchanged block
        # meets the same double rounding as the reference's values. One C pass over every block
        # (caed._temporal, daemon/csrc/temporal.c) gives the latents on the frame's grid, each
        # block's error and its non-zero count.
        last = fix_point if self._last_fix_point is None else self._last_fix_point
        coarse = self._coarse if fix_point < self.fix_point else None  # at the model's grid: the latents
        d_skip, block_nonzero = self._errors, self._nonzero
        _temporal.block_errors(flat, reference, self.fix_point - fix_point, self.fix_point - last, coarse, d_skip,
                               block_nonzero)
        q = flat if coarse is None else coarse
        # The noise level is the median block's error, except when the whole picture changes (a
        # pan, a cut, the lights): it rises at most 2 % a frame, so that change is sent, not ignored.
        self._noise = min(float(np.median(d_skip)), self._noise * NOISE_RISE)
        noise = NOISE_FLOOR_FACTOR * self._noise
        candidates = np.flatnonzero(d_skip > noise)
        sent = np.zeros(h * w, bool)
        chosen = candidates
        if len(candidates):
            bits = self._bits_per_value * (block_nonzero[candidates] + 1)
            lam = self.lambda_scale * LAMBDA_PER_STEP2 * 4.0 ** theta  # step**2, continuous between rates
            threshold = lam * bits
            keep_on = self._sent_last[candidates] & (self.reference == "keyframe")
            gain = d_skip[candidates] - noise
            needed = np.where(keep_on, HYSTERESIS * threshold, threshold)
            passed = gain > needed  # before the dead zone, which only lowers a block's gain
            chosen, gain, needed = candidates[passed], gain[passed], needed[passed]
        # what sending leaves on the frame's grid (values the dead zone kept at the reference's),
        # against the values d_skip compared where they are on this grid: after a step down (the
        # last frame finer) they took the last frame's rounding path, and a block kept from a finer
        # keyframe whose values round another way would otherwise be "sent" with no residual,
        # coarsening it
        target = q
        if last > fix_point:
            target = requantize(requantize(flat, self.fix_point, last), last, fix_point)
        base, residual, left = self._sent_blocks(flat, reference, chosen, target, fix_point)
        if len(chosen) and left is not None:
            kept = gain - left > needed
            chosen, base, residual = chosen[kept], base[kept], residual[kept]
        sent[chosen] = True
        if sent.sum() > SCENE_CUT_SHARE * h * w:  # a new scene: the keyframe is cheaper and clean
            return self._keyframe(latents, fix_point)
        values = self._values
        values[self._sent_last] = 0  # the last inter frame set no others (after a keyframe: all, once)
        values[sent] = residual
        start = self._key_coder_state if self.reference == "keyframe" else self._coder_state
        payload, self._coder_state = pack_inter(self.codec, values.reshape(h, w, c), sent.reshape(h, w), residual, start,
                                                Reference(reference, self.fix_point - fix_point))
        nonzero = int(np.count_nonzero(residual))
        if nonzero:
            self._bits_per_value = 8 * len(payload) / nonzero
        if self.reference == "keyframe":
            self.reconstruction = reference.copy()
        self.reconstruction[sent] = (base + residual) << (self.fix_point - fix_point)
        self._sent_last = sent
        self._blocks_sent_since_key += int(sent.sum())
        self._blocks_since_key += h * w
        ref_index = self.key_index if self.reference == "keyframe" else self.index - 1
        return CodedFrame(self.index, ref_index, fix_point, payload, int(sent.sum()), h * w)


# ----- the viewer's side -----
class ChainBroken(LookupError):
    """A frame's reference is not held: it cannot be decoded (counted by `reason`, never shown).
    "no_keyframe": none of this stream's keyframes has arrived yet (the viewer joined mid-stream);
    "broken_chain": a frame it depends on was lost."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass
class _Held:
    """A frame the viewer holds: its values as the decoder takes them, float32 (C, H, W) (exact:
    int8 * 2**-F); for a stream whose codec reads an inter frame's reference (protocol 4,
    Codec.max_reference_shift) the same values as int16 rows of C values (H*W, C) at
    `rows_fix_point`, the finest fix point of its chain since the keyframe (exact too), else None;
    and the state its payload left the codec in."""

    seq: int
    values: np.ndarray
    coder_state: object
    rows: np.ndarray | None
    rows_fix_point: int


class TemporalState:
    """One stream's decoded latents at the viewer: the last keyframe and the last frame applied,
    each with the state its payload left the codec in (an inter frame's payload starts from its
    reference's and, since protocol 4, may read the reference's values)."""

    def __init__(self):
        self._key: _Held | None = None
        self._last: _Held | None = None

    def apply(self, frame) -> np.ndarray:
        """The latent values of `frame` (a caed.wire.LatentFrame; do not modify them); ChainBroken if
        its reference is not held, PayloadError if its inter payload does not decode against it."""
        h = frame.header
        # the int16 rows cost a 720p keyframe 0.46 ms, an inter frame up to ~0.7: only for codecs that read them
        reads_reference = h.version >= 4 and frame.codec.max_reference_shift is not None
        if h.keyframe:
            values = dequantize(frame.planes, h.fix_point)
            rows = (cv2.transpose(frame.planes.reshape(len(frame.planes), -1)).astype(np.int16)
                    if reads_reference else None)
            self._key = self._last = _Held(h.seq, values, frame.coder_state, rows, h.fix_point)
            return values
        height, width, channels = h.shape
        for held in (self._last, self._key):
            if held is not None and held.seq == h.ref_seq and held.values.shape == (channels, height, width):
                rows, rows_fix_point, reference = None, h.fix_point, None
                if reads_reference:
                    rows, rows_fix_point = self._rows_for(held, h.fix_point, frame.codec.max_reference_shift)
                    reference = Reference(rows, rows_fix_point - h.fix_point)
                planes, sent, coder_state = unpack_inter(frame.codec, frame.payload, h.shape, held.coder_state,
                                                         residuals=h.version >= 3, reference=reference,
                                                         positions=codes_positions(frame.codec, h.version))
                values = held.values.copy()
                updated = np.rint(values[:, sent] * np.float32(2.0 ** h.fix_point)) + planes[:, sent]
                if reads_reference:
                    shift = rows_fix_point - h.fix_point
                    if updated.size and int(np.abs(updated).max()) << shift > INT16_MAX:
                        raise PayloadError(f"inter frame's values overflow its chain's grid ({shift} steps finer)")
                    if rows is held.rows and held is self._key:  # the keyframe's stay for the frames predicted
                        rows = rows.copy()  # from it; a previous frame's are this frame's now (its values: the caller's)
                    rows[sent.ravel()] = updated.T.astype(np.int16) << shift
                values[:, sent] = updated * np.float32(2.0 ** -h.fix_point)
                self._last = _Held(h.seq, values, coder_state, rows, rows_fix_point)
                return values
        self._last = None
        if self._key is None:
            raise ChainBroken("no_keyframe", f"frame {h.seq} is an inter frame and no keyframe has arrived yet")
        raise ChainBroken("broken_chain", f"frame {h.seq} is predicted from frame {h.ref_seq}, which this viewer "
                                          "does not hold")

    @staticmethod
    def _rows_for(held: _Held, fix_point: int, max_shift: int) -> tuple[np.ndarray, int]:
        """`held`'s int16 rows and their fix point for an inter frame at `fix_point` that reads them,
        or PayloadError where they cannot serve: not kept (the stream changed codec or protocol
        within a chain), overflowing a finer frame's grid, or more than `max_shift` steps finer."""
        rows, rows_fix_point = held.rows, held.rows_fix_point
        if rows is None:
            raise PayloadError("inter frame reads its reference's values, which its chain's codec or protocol "
                               "did not keep")
        if fix_point > rows_fix_point:  # a finer frame than any before: the rows take its grid
            steps = fix_point - rows_fix_point
            if int(np.abs(rows, dtype=np.int32).max()) << steps > INT16_MAX:
                raise PayloadError(f"inter frame at fix point {fix_point}, {steps} steps finer than its "
                                   "chain: its reference's values overflow that grid")
            rows, rows_fix_point = rows << steps, fix_point
        if rows_fix_point - fix_point > max_shift:
            raise PayloadError(f"inter frame at fix point {fix_point}, {rows_fix_point - fix_point} steps coarser "
                               f"than its chain's finest ({rows_fix_point}): at most {max_shift}")
        return rows, rows_fix_point
