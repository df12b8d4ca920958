"""docs/wire.md (`arith`) is enough to write a compatible decoder: this one, in plain Python from the
document alone, must decode the C coder's payloads to the same tensors."""
import numpy as np
import pytest

from arith_latents import blocky, pinned
from caed.codecs.arith import ArithCodec
from caed.codecs.base import Reference

ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
          21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60,
          61, 54, 47, 55, 62, 63]
ADAPT = [1, 2, 2, 2] + [3] * 6 + [4] * 11 + [5] * 23 + [6]


def _table(edges):
    """Bucket table from the inclusive upper bounds of all buckets but the last."""
    return [next((i for i, e in enumerate(edges) if v <= e), len(edges)) for v in range(edges[-1] + 2)]


SMALL = _table([0, 2, 6])
SIDE = _table([0, 1, 3, 6, 11])
PREDICTED = _table([0, 1, 2, 3, 4, 6, 8, 11, 15, 22, 31])
COUNT = _table([2, 5, 10, 20])
REMAINING = _table([0, 1, 2, 3, 4, 5, 6, 7, 8, 15])
FREQUENCY = _table([0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 17, 22, 29])
ZERO_AROUND = _table([0, 1, 2, 4, 6, 9, 14])
MAGNITUDE_AROUND = _table([0, 3, 6, 12, 24])
EDGE = _table([1, 3, 6, 12, 24])
GRADIENT = _table([0, 1, 3, 7, 15, 31, 63])
REFERENCE = _table([0, 1, 2, 4, 6])


def bucket(table, v):
    return table[min(v, len(table) - 1)]


def sgn(v):
    return 0 if v < 0 else 1 if v == 0 else 2


class Corrupt(Exception):
    pass


class Models(dict):
    """Every model starts at p0 = 16384, seen = 0; keyed by (name, context...)."""

    def __missing__(self, key):
        self[key] = [16384, 0]
        return self[key]


class Decoder:
    def __init__(self, data: bytes, models: Models):
        self.data, self.pos = data, 0
        self.range, self.code = 0xFFFFFFFF, 0
        for _ in range(4):
            self.code = (self.code << 8) | self.next()
        self.models = models

    def next(self):
        byte = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return byte

    def raw(self, p0):
        bound = (self.range >> 15) * p0
        if self.code < bound:
            bit, self.range = 0, bound
        else:
            bit, self.code, self.range = 1, self.code - bound, self.range - bound
        while self.range < 1 << 24:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = ((self.code << 8) | self.next()) & 0xFFFFFFFF
        return bit

    @staticmethod
    def update(model, bit):
        shift = ADAPT[model[1]]
        model[0] = model[0] - (model[0] >> shift) if bit else model[0] + ((32768 - model[0]) >> shift)
        model[1] = min(model[1] + 1, 44)

    def bit(self, key):
        model = self.models[key]
        bit = self.raw(model[0])
        self.update(model, bit)
        return bit

    def bit2(self, key_a, key_b):
        a, b = self.models[key_a], self.models[key_b]
        bit = self.raw((a[0] + b[0] + 1) >> 1)
        self.update(a, bit)
        self.update(b, bit)
        return bit

    def uint(self, a, b, low, max_class):
        cls = 0
        while cls < max_class and self.bit2(a + ("more", cls), b + ("more", cls)):
            cls += 1
        if cls < 2:
            return cls
        v = 2 | self.bit2(a + ("top", cls - 1), b + ("top", cls - 1))
        for i in range(cls - 3, -1, -1):
            v = (v << 1) | self.bit((low, cls, i))
        return v


def lower_neighbours(c, dct):
    if not dct:
        return [c - 1, c - 1] if c > 0 else []
    u, v = divmod(c, 8)
    found = [n for n in ((u - 1) * 8 + v if u > 0 else None, c - 1 if v > 0 else None) if n not in (None, 0)]
    return found * 2 if len(found) == 1 else found


def decode(payload: bytes, h: int, w: int, c_total: int, models: Models | None = None,
           residual: bool = False, reference: np.ndarray | None = None, shift: int = 0,
           sent: np.ndarray | None = None) -> np.ndarray:
    """A keyframe's payload; with `models` (left as the payload leaves them) and `residual`, an
    inter frame's (arith §7), whose contexts read `reference` (int (H, W, C), `shift` finer than the
    frame's grid) where given (protocol 4), and which codes its positions where `sent` is given, an
    (H, W) bool array it fills (protocol 5)."""
    if len(payload) < 4 or payload[:2] != b"A1":
        raise Corrupt("magic")
    if int.from_bytes(payload[2:4], "little") != c_total:
        raise Corrupt("channels")
    d = Decoder(payload[4:], Models() if models is None else models)
    dct = c_total % 64 == 0
    blocks = (c_total + 63) // 64
    out = np.zeros((h, w, c_total), int)
    counts = np.zeros((h, w, blocks), int)

    def at(y, x, c):
        return int(out[y, x, c]) if 0 <= y < h and 0 <= x < w else 0

    def ref(y, x, c):
        v = int(reference[y, x, c])
        return -(-v >> shift) if v < 0 else v >> shift

    def flag(y, x):
        return bool(sent[y, x]) if 0 <= y < h and 0 <= x < w else False

    for y in range(h):
        for x in range(w):
            if sent is not None:
                left, up = flag(y, x - 1), flag(y - 1, x)
                low = 0
                if reference is not None:
                    low = sum(ref(y, x, ZIGZAG[k + 1] if dct else k) != 0 for k in range(min(5, c_total)))
                sent[y, x] = d.bit2(("sent_by_sides", left, up, flag(y - 1, x - 1) or flag(y - 1, x + 1)),
                                    ("sent_by_reference", low, left + up))
                if not sent[y, x]:
                    continue
            previous_residual = 0
            for b in range(blocks):
                base, n = 64 * b, min(64, c_total - 64 * b)
                cls, first = min(b, 2), 1 if dct else 0
                scan = ZIGZAG if dct else list(range(n))
                n_left = counts[y, x - 1, b] if x > 0 else 0
                n_up = counts[y - 1, x, b] if y > 0 else 0
                predicted = (n_left + n_up + 1) // 2 if x > 0 and y > 0 else n_left + n_up
                n_previous = bucket(SMALL, counts[y, x, b - 1]) if b > 0 else 0
                second = ("count_by_sides", cls, bucket(SIDE, n_left), bucket(SIDE, n_up))
                if reference is not None:
                    low = sum(ref(y, x, base + (ZIGZAG[k + 1] if dct else k)) != 0 for k in range(min(5, n)))
                    second = ("count_by_reference", cls, low, bucket(SIDE, predicted))
                count = d.uint(("count", cls, n_previous, bucket(PREDICTED, predicted)), second, "low_count", 7)
                if count > n - first:
                    raise Corrupt("count")
                counts[y, x, b] = count
                if dct:
                    l, u, ul = at(y, x - 1, base), at(y - 1, x, base), at(y - 1, x - 1, base)
                    if x > 0 and y > 0:
                        prediction = sorted([l, u, l + u - ul])[1]
                        gradient = abs(l - ul) + abs(u - ul)
                    else:
                        prediction, gradient = (l if x > 0 else u), 0
                    if residual:
                        prediction = 0
                    ahead = abs(at(y - 1, x + 1, base) - u) if y > 0 and x + 1 < w else 0
                    second = ("dc_by_texture", cls, bucket(GRADIENT, ahead), bucket(GRADIENT, abs(l - u)))
                    if reference is not None:
                        second = ("dc_by_reference", cls, bucket(GRADIENT, abs(ref(y, x, base))), bucket(SMALL, count))
                    size = d.uint(("dc", cls, bucket(SMALL, count), bucket(GRADIENT, gradient),
                                   bucket(SMALL, abs(previous_residual)) if b > 0 else 0), second, "low_dc", 8)
                    dc = prediction
                    if size:
                        negative = d.bit(("dc_sign", cls, sgn(previous_residual) if b > 0 else 1))
                        dc = prediction - size if negative else prediction + size
                    previous_residual = dc - prediction
                    if not -128 <= dc <= 127:
                        raise Corrupt("dc")
                    out[y, x, base] = dc
                remaining, k = count, first
                while remaining > 0:
                    c = scan[k]
                    left, up = at(y, x - 1, base + c), at(y - 1, x, base + c)
                    lower = sum(abs(int(out[y, x, base + m])) for m in lower_neighbours(c, dct))
                    around = (2 * (abs(left) + abs(up) + lower) + abs(at(y - 1, x - 1, base + c))
                              + abs(at(y - 1, x + 1, base + c)))
                    r = ref(y, x, base + c) if reference is not None else 0
                    zero_second = ("zero_by_channel", cls, c, bucket(ZERO_AROUND, around), bucket(COUNT, count))
                    magnitude_second = ("magnitude_by_channel", cls, c, bucket(MAGNITUDE_AROUND, around))
                    if reference is not None:
                        zero_second = ("zero_by_reference", cls, c, bucket(REFERENCE, abs(r)), bucket(COUNT, count))
                        magnitude_second = ("magnitude_by_reference", cls, bucket(REFERENCE, abs(r)), bucket(COUNT, count),
                                            bucket(FREQUENCY, k))
                    if remaining < n - k and not d.bit2(
                            ("zero", cls, bucket(ZERO_AROUND, around), bucket(REMAINING, remaining), bucket(FREQUENCY, k)),
                            zero_second):
                        k += 1
                        continue
                    remaining -= 1
                    pv = sgn(int(out[y, x, base + c - 64])) if b > 0 else 1
                    if dct and c in (1, 8):
                        e = ((at(y, x - 1, base) - int(out[y, x, base]) - at(y, x - 1, base + 1)) if x > 0 else 0) if c == 1 \
                            else ((at(y - 1, x, base) - int(out[y, x, base]) - at(y - 1, x, base + 8)) if y > 0 else 0)
                        magnitude = ("edge_magnitude", cls, c == 8, bucket(EDGE, abs(e)), bucket(COUNT, count))
                        sign = ("edge_sign", cls, c == 8, sgn(e), sgn(left), sgn(up), pv)
                    else:
                        magnitude = ("magnitude", cls, bucket(COUNT, count), bucket(MAGNITUDE_AROUND, around),
                                     bucket(FREQUENCY, k))
                        sign = ("sign", cls, min(k, 10), sgn(left), sgn(up), pv)
                        if reference is not None:
                            sign = ("sign_by_reference", cls, min(k, 10), sgn(r), sgn(left), sgn(up))
                    size = 1 + d.uint(magnitude, magnitude_second, "low_magnitude", 7)
                    negative = d.bit(sign)
                    if size == 128 and not negative:
                        raise Corrupt("value")
                    out[y, x, base + c] = -size if negative else size
                    k += 1
        if d.pos > len(d.data):
            raise Corrupt("truncated")
    if d.pos != len(d.data):
        raise Corrupt("trailing" if d.pos < len(d.data) else "truncated")
    return out.astype(np.int8).transpose(2, 0, 1)


@pytest.mark.parametrize("seed, shape", [(0, (4, 5, 192)), (1, (3, 6, 64)), (2, (5, 3, 65)), (3, (2, 4, 32)),
                                         (4, (3, 3, 128)), (5, (1, 7, 1))])
def test_the_documented_decoder_agrees_with_the_coder(seed, shape):
    latents = blocky(seed, shape)
    payload = ArithCodec().encode(latents)
    np.testing.assert_array_equal(decode(payload, *shape), latents.transpose(2, 0, 1))


@pytest.mark.parametrize("shape", [(4, 6, 192), (3, 5, 65)])
def test_the_documented_decoder_handles_extremes(shape):
    latents = pinned(shape)
    np.testing.assert_array_equal(decode(ArithCodec().encode(latents), *shape), latents.transpose(2, 0, 1))


def test_the_documented_decoder_refuses_what_the_coder_refuses():
    latents = blocky(6, (3, 4, 64))
    payload = ArithCodec().encode(latents)
    for damaged in (payload[:-1], payload + b"\0"):
        with pytest.raises(Corrupt):
            decode(damaged, 3, 4, 64)


@pytest.mark.parametrize("shape", [(4, 5, 192), (3, 4, 65)])
def test_the_documented_decoder_follows_a_stream_of_inter_frames(shape):
    """arith §7: an inter frame's payload starts from the models its reference's payload left and
    predicts DCs as 0; the documented decoder, carrying its own models, agrees with the coder."""
    codec, models = ArithCodec(), Models()
    keyframe = blocky(7, shape)
    payload, state = codec.encode_keyframe(keyframe)
    np.testing.assert_array_equal(decode(payload, *shape, models), keyframe.transpose(2, 0, 1))
    for seed in (8, 9):
        residuals = blocky(seed, shape) // 4
        residuals[: shape[0] // 2] = 0  # blocks not sent
        payload, state = codec.encode_residuals(residuals, state)
        assert payload != codec.encode(residuals)
        np.testing.assert_array_equal(decode(payload, *shape, models, residual=True), residuals.transpose(2, 0, 1))


def after_a_keyframe(seed: int, shape: tuple) -> tuple:
    """(the coder, the documented decoder's models, the coder's state) after a keyframe of `shape`."""
    codec, models = ArithCodec(), Models()
    payload, state = codec.encode_keyframe(blocky(seed, shape))
    decode(payload, *shape, models)
    return codec, models, state


def reference_values(rng, shape: tuple, shift: int) -> np.ndarray:
    """A reference's values `shift` fix points finer than the frame's, 40 % non-zero on its grid."""
    return (rng.integers(-9, 10, shape) * (rng.random(shape) < 0.4) << shift) + rng.integers(0, 1 << shift, shape)


@pytest.mark.parametrize("shape, shift", [((4, 5, 192), 0), ((4, 5, 192), 2), ((3, 4, 65), 1)])
def test_the_documented_decoder_reads_the_reference_as_protocol_4_does(shape, shift):
    """arith §7, protocol 4: an inter frame's contexts also read its reference's values on its grid;
    the documented decoder, given the same values, agrees with the coder, and the values matter."""
    codec, models, state = after_a_keyframe(10, shape)
    rng = np.random.default_rng(shift)
    for seed in (11, 12):
        residuals = blocky(seed, shape) // 3
        residuals[: shape[0] // 2] = 0
        values = reference_values(rng, shape, shift)
        start = state
        payload, state = codec.encode_residuals(residuals, start, Reference(values.astype(np.int16), shift))
        assert payload != codec.encode_residuals(residuals, start)[0]
        np.testing.assert_array_equal(decode(payload, *shape, models, residual=True, reference=values, shift=shift),
                                      residuals.transpose(2, 0, 1))


@pytest.mark.parametrize("shape, shift", [((4, 5, 192), 1), ((3, 4, 65), 0), ((2, 6, 3), 2)])
def test_the_documented_decoder_reads_the_positions_as_protocol_5_codes_them(shape, shift):
    """arith §7, protocol 5: an inter frame codes which positions it sent, then only their blocks;
    the documented decoder agrees with the coder on the values and the positions, a sent position
    may be all zero, and a position not sent reads zero whatever the encoder was given there."""
    codec, models, state = after_a_keyframe(13, shape)
    rng = np.random.default_rng(shift)
    for seed in (14, 15):
        residuals = blocky(seed, shape) // 3
        sent = rng.random(shape[:2]) < 0.4
        sent[0, 0], residuals[0, 0] = True, 0  # sent, all zero
        values = reference_values(rng, shape, shift)
        payload, state = codec.encode_residuals(residuals, state, Reference(values.astype(np.int16), shift), sent)
        got = np.zeros(shape[:2], bool)
        planes = decode(payload, *shape, models, residual=True, reference=values, shift=shift, sent=got)
        np.testing.assert_array_equal(got, sent)
        np.testing.assert_array_equal(planes, np.where(sent[:, :, None], residuals, 0).transpose(2, 0, 1))
