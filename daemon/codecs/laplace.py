"""`laplace`: context-adaptive discrete Laplace models and ANS (host-side: needs `constriction`)."""
from __future__ import annotations

import decimal
import functools

import numpy as np

from .base import Codec, PayloadError, check_channels


@functools.lru_cache(maxsize=None)
def _laplace_counts(code: int) -> np.ndarray:
    """floor(65536 * exp(-d / scale)) + 1 for distances d = 0..510, scale = 2 ** ((code - 64) / 16).

    Computed in decimal arithmetic, which is exact software math: float exp differs in the last
    bit between libms (the board's aarch64 and the host's x86), and one count that differs
    between sender and receiver would silently desynchronise the entropy decoder.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        step = (-(decimal.Decimal(2) ** (decimal.Decimal(64 - code) / 16))).exp()
        value, counts = decimal.Decimal(65536), []
        for _ in range(511):
            counts.append(int(value) + 1)
            value *= step
    return np.array(counts, np.float64)


@functools.lru_cache(maxsize=None)
def _scale_code_prices() -> tuple[np.ndarray, np.ndarray]:
    """-log2 of the counts of scale codes 1..255 (rows) per distance, and log2 of their totals
    over -reach..reach (column = reach): what the encoder weighs to choose a scale code."""
    counts = np.stack([_laplace_counts(code) for code in range(1, 256)])
    return -np.log2(counts), np.log2(2 * np.cumsum(counts, axis=1) - counts[:, :1])


@functools.lru_cache(maxsize=None)
def _plan(channels: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Coding order, block of each channel, and per channel the (channel, weight) pairs of the
    channels coded before it whose activity predicts its own: in its block those at frequency
    distance 1 (weight 48) and 2 (24), in earlier blocks the same frequency (24).

    With blocks of 64 channels (an 8x8 transform per component: channel b*64 + u*8 + v) each
    block goes in zig-zag order from the lowest AC frequency up and its DC last, block after
    block: a coefficient's context is its block's lower frequencies and the other components'
    same frequency, and DC sees all of its block's AC. Other channel counts are one block in
    index order, frequencies on a line. (Weights tuned on Kodak dct8 latents.)
    """
    index = np.arange(channels)
    if channels % 64:
        order, block, uv = index, np.zeros(channels, int), np.stack([np.zeros(channels, int), index], 1)
    else:
        zigzag = sorted(range(64), key=lambda i: (i // 8 + i % 8, i % 8 if (i // 8 + i % 8) % 2 else i // 8))
        order = np.array([b * 64 + i for b in range(channels // 64) for i in zigzag[1:] + [0]])
        block, uv = index // 64, np.stack([index % 64 // 8, index % 8], 1)
    rank = np.empty(channels, int)
    rank[order] = index
    predictors = []
    for c in index:
        distance = np.abs(uv - uv[c]).sum(1)
        weight = np.where(block == block[c], np.select([distance == 1, distance == 2], [48, 24]), np.where(distance == 0, 24, 0))
        chosen = np.flatnonzero((rank < rank[c]) & (weight > 0))
        predictors.append(tuple(zip(chosen.tolist(), weight[chosen].tolist())))
    return order, block, tuple(predictors)


class _Activity:
    """Clipped |residual| of the channels coded so far, per channel and summed per block."""

    def __init__(self, positions: int, blocks: int, clip: int):
        self.clip = clip
        self.channels: dict[int, np.ndarray] = {}
        self.blocks = np.zeros((blocks, positions), np.int32)
        self.total = np.zeros(positions, np.int32)

    def add(self, channel: int, block: int, residual: np.ndarray) -> None:
        activity = np.minimum(np.abs(residual), self.clip).astype(np.int32)
        self.channels[channel] = activity
        self.blocks[block] += activity
        self.total += activity


class LaplaceCodec(Codec):
    """Entropy coding of int8 latents with context-adaptive discrete Laplace models and ANS
    (the `constriction` library).

    A learned transform codec leaves its latents nearly uncorrelated but not independent: where
    an image has texture or edges, all of a block's coefficients are large together. So the
    channels are coded one after another (see `_plan`), and each position's symbol is coded with
    a Laplace whose scale depends on the channel and on a context class: the activity (clipped
    |residual|) of the channels already coded, at that block and the 8 around it, weighted
    towards nearby frequencies. Positions are split into CLASSES equal-count classes by that
    activity, so both ends derive the classes from data the decoder already has, and each
    (channel, class) gets a scale code fitted to the frame; one ANS call per (channel, class).

    Per channel the symbols are its values, or their differences to the left neighbour (raster
    order) or to the one above; the DC channel of a 64-channel block may also subtract alpha/16
    times the sum of its horizontal (vertical) first AC over the two blocks, which predicts the
    DC step at an edge. Residual = symbol - location.

    Payload: b"L2", uint16 LE channel count (must equal the declared shape's), then the ANS words
    (uint32 LE). The stream starts with the parameters under fixed models: reach (max
    |residual|, 0..510, 0 = constant channel) and location (int8) of every channel, mode (0
    values, 1 left, 2 upper differences) of the channels with reach > 0, alpha (-64..64) of
    those of them that are DC channels in modes 1-2, and the scale codes (1..255, scale =
    2 ** ((code - 64) / 16)) of every (coded channel, class) in coding order as differences to
    the previous class's, the first class's to the previous channel's (first classes' deltas,
    then the others'). Then the residuals, per
    coded channel and class, over -reach..reach. The probability tables are integer counts
    (`_laplace_counts`), so sender and receiver build bit-identical models on any CPU.
    """

    name = "laplace"
    MAGIC = b"L2"
    CLASSES = 6
    CLIP = 15  # activity of one symbol is at most this: a few huge values must not set a class
    _MAX_REACH = 510
    _FIRST_CODE = 64  # reference of the first scale code
    _ALPHAS = 64  # |alpha| <= 64 (4.0)

    def __init__(self):
        try:
            import constriction
        except ImportError:
            raise ValueError("payload codec 'laplace' needs the constriction package (pip install constriction)") from None
        self._coder = constriction.stream.stack.AnsCoder
        self._categorical = constriction.stream.model.Categorical

    # ----- what both ends compute alike -----
    def _laplace(self, code: int, half: int, centre: int = 0):
        """Discrete Laplace of scale code `code` over -half..half, peaked at `centre`."""
        distance = np.abs(np.arange(-half, half + 1) - centre)
        return self._categorical(_laplace_counts(code)[distance], perfect=False)

    def _parameter_models(self) -> list[tuple]:
        """(model, offset to its first symbol) of reach, location, mode, alpha, the first class's
        scale code deltas and the other classes' (fixed, fitted to dct8 latents on Kodak)."""
        return [
            (self._categorical(_laplace_counts(72)[:self._MAX_REACH + 1], perfect=False), 0),
            (self._laplace(13, 128), -128),
            (self._categorical(np.array([6.0, 1.0, 1.0]), perfect=False), 0),
            (self._laplace(100, self._ALPHAS, -16), -self._ALPHAS),
            (self._laplace(104, 254), -254),
            (self._laplace(108, 254, 5), -254),  # activity classes go up, so do their scales
        ]

    @staticmethod
    def _has_partner(mode: np.ndarray, present: np.ndarray) -> np.ndarray:
        """Which channels carry an alpha: coded DC channels of 64-channel blocks in a difference mode."""
        dc = (np.arange(len(mode)) % 64 == 0) & (len(mode) % 64 == 0)
        return dc & present & (mode > 0)

    @staticmethod
    def _shift(values: np.ndarray, mode: int, width: int) -> np.ndarray:
        """Each position's left (mode 1, raster order) or upper (mode 2) neighbour, 0 at the edge."""
        step = 1 if mode == 1 else width
        return np.concatenate([np.zeros((min(step, len(values)),) + values.shape[1:], values.dtype), values[:-step]])

    @staticmethod
    def _integrate(differences: np.ndarray, mode: int, width: int) -> np.ndarray:
        if mode == 1:
            return np.cumsum(differences)
        return np.cumsum(differences.reshape(-1, width), axis=0).ravel()

    def _gradient(self, partner: np.ndarray, mode: int, width: int) -> np.ndarray:
        """The partner's sum over the two positions a difference spans."""
        return partner + self._shift(partner, mode, width)

    @staticmethod
    def _prediction(gradient: np.ndarray, alpha) -> np.ndarray:
        """alpha/16 x the gradient, rounded: the DC difference predicted (alpha per column allowed)."""
        return np.clip((alpha * gradient + 8) >> 4, -255, 255)

    @staticmethod
    def _box(a: np.ndarray, width: int) -> np.ndarray:
        """3x3 box sums (zero outside)."""
        a = a.reshape(-1, width)
        rows = a.copy()
        rows[1:] += a[:-1]
        rows[:-1] += a[1:]
        box = rows.copy()
        box[:, 1:] += rows[:, :-1]
        box[:, :-1] += rows[:, 1:]
        return box.ravel()

    def _classes(self, c: int, activity: _Activity, plan: tuple, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions grouped by context class (stable), and the count of each class.

        Context of a position: its block's total activity + all blocks' total + the weighted
        activity of c's predictors (`_plan`); 8x that at the block itself plus its 3x3 box sum.
        The CLASSES - 1 thresholds are its order statistics at equal counts in every 4th position.
        """
        _, block, predictors = plan
        context = activity.blocks[block[c]] + activity.total
        for n, weight in predictors[c]:
            if n in activity.channels:
                context = context + weight * activity.channels[n]
        context = 8 * context + self._box(context, width)
        sample = context[::4]
        ranks = [len(sample) * k // self.CLASSES for k in range(1, self.CLASSES)]
        cls = np.zeros(len(context), np.int8)
        for threshold in np.partition(sample, ranks)[ranks]:
            cls += context >= threshold
        return np.argsort(cls, kind="stable"), np.bincount(cls, minlength=self.CLASSES)

    # ----- encoder -----
    def _choose_symbols(self, x: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per channel (column of x, positions x channels) the mode, alpha, location and symbols
        with the least total |symbol - median| on every 4th position (the receiver reads the
        choice, so a sample is enough). A DC channel's alpha is the least-squares fit of its
        differences to its partner's gradient."""
        channels = x.shape[1]
        zero = np.zeros(channels, np.int32)
        candidates = [(x, zero, 0)]
        for mode in (1, 2):
            differences = x - self._shift(x, mode, width)
            candidates.append((differences, zero, mode))
            if channels % 64 == 0:
                dc = np.arange(0, channels, 64)
                partners = x[:, dc + (1 if mode == 1 else 8)].astype(np.int64)
                g = self._gradient(partners, mode, width)
                fit = (g * differences[:, dc]).sum(0) / np.maximum((g * g).sum(0), 1)
                alphas = zero.copy()
                alphas[dc] = np.clip(np.round(16 * fit), -self._ALPHAS, self._ALPHAS)
                predicted = differences[:, dc] - self._prediction(g, alphas[dc])
                candidates.append((predicted, alphas, mode))
        best_cost = np.full(channels, np.iinfo(np.int64).max)
        mode, alpha, location = (np.zeros(channels, np.int32) for _ in range(3))
        symbols = np.empty_like(x)
        for values, alphas, candidate_mode in candidates:
            columns = np.arange(channels) if values.shape[1] == channels else np.arange(0, channels, 64)
            sample = values[::4]
            centre = np.clip(np.round(np.median(sample, axis=0)), -128, 127).astype(np.int32)
            cost = np.abs(sample - centre).sum(0)
            better = cost < best_cost[columns]
            if len(columns) < channels:  # alpha's prediction may widen the residuals beyond reach
                better &= np.abs(values - centre).max(axis=0) <= self._MAX_REACH
            chosen = columns[better]
            best_cost[chosen] = cost[better]
            mode[chosen], alpha[chosen], location[chosen] = candidate_mode, alphas[chosen], centre[better]
            symbols[:, chosen] = values[:, better]
        return mode, alpha, location, np.ascontiguousarray(symbols.T)

    def _scale_codes(self, residual: np.ndarray, reach: int, grouped: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Per class the scale code (1..255) that codes its residuals in the fewest bits."""
        price, log_total = _scale_code_prices()
        cls = np.repeat(np.arange(self.CLASSES), sizes)
        hist = np.bincount(cls * (reach + 1) + np.abs(residual[grouped]), minlength=self.CLASSES * (reach + 1))
        bits = hist.reshape(self.CLASSES, reach + 1) @ price[:, :reach + 1].T + sizes[:, None] * log_total[:, reach]
        return 1 + np.argmin(bits, axis=1)

    def encode(self, latents: np.ndarray) -> bytes:
        _, width, channels = latents.shape
        mode, alpha, location, symbols = self._choose_symbols(latents.reshape(-1, channels).astype(np.int32), width)
        residuals = symbols - location[:, None]
        # reach 0 marks a constant channel, which only values mode describes
        reach = np.maximum(np.abs(residuals).max(axis=1), (mode > 0).astype(np.int32))
        plan = _plan(channels)
        activity = _Activity(symbols.shape[1], plan[1][-1] + 1, self.CLIP)
        codes, streams = [], []  # streams in decoding order
        for c in plan[0]:
            if reach[c] == 0:
                continue
            grouped, sizes = self._classes(c, activity, plan, width)
            chosen = self._scale_codes(residuals[c], int(reach[c]), grouped, sizes)
            for k in np.flatnonzero(sizes == 0):  # an empty class repeats its reference: delta 0
                chosen[k] = chosen[k - 1] if k else (codes[-1][0] if codes else self._FIRST_CODE)
            codes.append(chosen)
            parts = np.split(residuals[c][grouped] + reach[c], np.cumsum(sizes)[:-1])
            streams += [(part, self._laplace(int(code), int(reach[c]))) for part, code in zip(parts, chosen) if len(part)]
            activity.add(c, plan[1][c], residuals[c])
        codes = np.array(codes, np.int32).reshape(-1, self.CLASSES)
        references = np.concatenate([[self._FIRST_CODE], codes[:-1, 0]])[:len(codes), None]
        deltas = np.diff(codes, axis=1, prepend=references)
        present = reach > 0
        parameters = (reach, location, mode[present], alpha[self._has_partner(mode, present)], deltas[:, 0],
                      deltas[:, 1:].ravel())
        streams = [(p - offset, model) for p, (model, offset) in zip(parameters, self._parameter_models())] + streams
        coder = self._coder()
        for symbols, model in reversed(streams):
            if len(symbols):
                coder.encode_reverse(np.ascontiguousarray(symbols, np.int32), model)
        return self.MAGIC + np.uint16(channels).astype("<u2").tobytes() + coder.get_compressed().astype("<u4").tobytes()

    # ----- decoder -----
    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        height, width, channels = shape
        positions = height * width
        if len(payload) < 4 or payload[:2] != self.MAGIC:
            raise PayloadError("not a laplace payload")
        check_channels(payload, 2, channels, self.name)
        if positions == 0 or (len(payload) - 4) % 4:
            raise PayloadError("laplace payload is truncated")
        words = np.frombuffer(payload, "<u4", offset=4).astype(np.uint32)
        out = np.empty((channels, positions), np.int8)
        try:
            coder = self._coder(words)
            models = self._parameter_models()

            def read(k: int, count: int) -> np.ndarray:
                model, offset = models[k]
                return coder.decode(model, count).astype(np.int32) + offset if count else np.zeros(0, np.int32)

            reach, location = read(0, channels), read(1, channels)
            present = reach > 0
            mode = np.zeros(channels, np.int32)
            mode[present] = read(2, int(present.sum()))
            alpha = np.zeros(channels, np.int32)
            partnered = self._has_partner(mode, present)
            alpha[partnered] = read(3, int(partnered.sum()))
            first = np.cumsum(read(4, int(present.sum()))) + self._FIRST_CODE
            deltas = read(5, int(present.sum()) * (self.CLASSES - 1)).reshape(-1, self.CLASSES - 1)
            codes = np.cumsum(np.concatenate([first[:, None], deltas], axis=1), axis=1)
            if codes.size and (codes.min() < 1 or codes.max() > 255):
                raise PayloadError("laplace payload has a scale code outside 1..255")
            if location.max() > 127:
                raise PayloadError("laplace payload has a location outside int8")
            plan = _plan(channels)
            activity = _Activity(positions, plan[1][-1] + 1, self.CLIP)
            chosen = iter(codes)
            for c in plan[0]:
                if not present[c]:
                    out[c] = location[c]
                    continue
                grouped, sizes = self._classes(c, activity, plan, width)
                r = int(reach[c])
                parts = [coder.decode(self._laplace(int(code), r), int(n)) for code, n in zip(next(chosen), sizes) if n]
                residual = np.empty(positions, np.int32)
                residual[grouped] = np.concatenate(parts).astype(np.int32) - r
                activity.add(c, plan[1][c], residual)
                symbols = residual + location[c]
                if mode[c]:
                    if alpha[c]:
                        partner = out[c + (1 if mode[c] == 1 else 8)].astype(np.int32)
                        gradient = self._gradient(partner, int(mode[c]), width)
                        symbols = symbols + self._prediction(gradient, int(alpha[c]))
                    symbols = self._integrate(symbols, int(mode[c]), width)
                if symbols.min() < -128 or symbols.max() > 127:
                    raise PayloadError("laplace payload decodes outside int8")
                out[c] = symbols
        except PayloadError:
            raise
        except (ValueError, RuntimeError, OverflowError, TypeError) as e:
            raise PayloadError(f"laplace payload is corrupt: {e}") from None
        if not coder.is_empty():
            raise PayloadError("laplace payload has trailing data")
        return out.reshape(channels, height, width)
