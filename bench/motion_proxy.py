"""What motion compensation at pixel precision would buy caed-temporal, measured offline.

An offline proxy of issue 14's missing piece, with the real model, decoder and arith coder on a
clip's first frames.

    python bench/motion_proxy.py --video ../shared/data/video/pedestrians_720p.avi [--frames 30] \
        [--rates 0,1,2,3,4] [--domain pixel|latent] [--plain-blocks] [--rounding 0.5] \
        [--json bench/results/motion_proxy_pedestrians_pixel.json]

Today's inter frames predict each latent block from the same block of the reference's latents
(conditional replenishment), which cannot follow a person moving 1-2 pixels a frame. Here every
frame after the first (a keyframe) is predicted from the previous one through integer motion
vectors per 16x16 block, found by a luma SAD search on the reference's synthesized picture (the
synthesis of its latents before the post-network: what both ends could compute), and coded with
caed.temporal's block decision, the residuals by the arith codec as an inter frame's (protocol 3).
Two loops (`--domain`):

- pixel (closed_loop): H.264's loop. The prediction is the reference's picture shifted; the encoder
  codes E(frame) - E(prediction) (dct8's encoder is affine); the frame reconstructs as the
  prediction plus the synthesis of the residual.
- latent (latent_loop): today's reference, the latent values every viewer holds; a sent position
  is predicted from its own values (today's residuals) or from E of the shifted picture.

Each frame's bits are its payload, the caed wire header, and its motion vectors at their ideal code
length (the empirical entropy of each vector's difference from its left neighbour's, plus 8 bytes
per distinct difference for the table). `zero-motion` is the same loop with every vector 0, which
separates what motion buys from what the loop itself changes. The same run measures caed-intra,
caed-temporal (today's encoder), MJPEG, x264-live and x264 with every frame intra on the same frames
(models/video.py). Everything is float and single-ended; docs/temporal.md ("Motion compensation:
what it would buy") has the results and what they mean.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arguments import comma_separated  # noqa: E402

BLOCK = 16
SEARCH = 8
# SAD units (pixel values in [0, 1]) added per pixel of vector length: a vector must explain at
# least ~1.3 levels of 255 per pixel of a 16x16 block to beat staying still, so sensor noise picks 0.
PENALTY = 256 * 1.3 / 255


def block_motion(current: np.ndarray, reference: np.ndarray, block: int = BLOCK, search: int = SEARCH,
                 penalty: float = PENALTY) -> np.ndarray:
    """Per block of `current` (H, W luma, H and W multiples of `block`), the integer (dy, dx) within
    +-search that minimises sum |current - reference shifted| + penalty * (|dy| + |dx|); ties keep
    the smaller vector. Returns int (H / block, W / block, 2)."""
    h, w = current.shape
    padded = np.pad(reference, search, mode="edge")
    offsets = sorted(((dy, dx) for dy in range(-search, search + 1) for dx in range(-search, search + 1)),
                     key=lambda o: (abs(o[0]) + abs(o[1]), o))
    best = np.full((h // block, w // block), np.inf)
    vectors = np.zeros((h // block, w // block, 2), np.int64)
    for dy, dx in offsets:
        moved = padded[search + dy:search + dy + h, search + dx:search + dx + w]
        cost = np.abs(current - moved).reshape(h // block, block, w // block, block).sum(axis=(1, 3))
        cost += penalty * (abs(dy) + abs(dx))
        better = cost < best
        best[better] = cost[better]
        vectors[better] = (dy, dx)
    return vectors


def compensate(reference: np.ndarray, vectors: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """`reference` (H, W, ...) with each block taken from its position shifted by its vector,
    reading the reference's edge beyond its border."""
    h, w = reference.shape[:2]
    dy = np.repeat(np.repeat(vectors[..., 0], block, axis=0), block, axis=1)
    dx = np.repeat(np.repeat(vectors[..., 1], block, axis=0), block, axis=1)
    rows = np.clip(np.arange(h)[:, None] + dy, 0, h - 1)
    cols = np.clip(np.arange(w)[None, :] + dx, 0, w - 1)
    return reference[rows, cols]


def compensate_overlapped(reference: np.ndarray, vectors: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Overlapped block motion compensation: each pixel blends the reference shifted by the vectors
    of the four blocks whose centres surround it, with raised-cosine weights (1 at a block's
    centre, summing to 1), so that the prediction has no seam where two vectors meet."""
    h, w = reference.shape[:2]
    gh, gw = vectors.shape[:2]

    def axis(n: int, cells: int):
        u = (np.arange(n) + 0.5) / block - 0.5
        low = np.floor(u).astype(np.int64)
        weight_high = np.sin(np.pi / 2 * (u - low)) ** 2
        return np.clip(low, 0, cells - 1), np.clip(low + 1, 0, cells - 1), weight_high

    y0, y1, wy = axis(h, gh)
    x0, x1, wx = axis(w, gw)
    out = np.zeros(reference.shape, np.float32)
    for ys, wys in ((y0, 1 - wy), (y1, wy)):
        for xs, wxs in ((x0, 1 - wx), (x1, wx)):
            v = vectors[ys[:, None], xs[None, :]]
            rows = np.clip(np.arange(h)[:, None] + v[..., 0], 0, h - 1)
            cols = np.clip(np.arange(w)[None, :] + v[..., 1], 0, w - 1)
            weight = (wys[:, None] * wxs[None, :]).astype(np.float32)
            out += reference[rows, cols] * (weight[..., None] if reference.ndim == 3 else weight)
    return out


def vector_bytes(vectors: np.ndarray) -> float:
    """The vectors' ideal code length in bytes: each one's difference from its left neighbour's (the
    first of a row from (0, 0)), at the empirical entropy of those differences, plus 8 bytes per
    distinct difference for a table of them (an adaptive coder needs none: this overstates)."""
    left = np.concatenate([np.zeros_like(vectors[:, :1]), vectors[:, :-1]], axis=1)
    differences = (vectors - left).reshape(-1, 2)
    _, counts = np.unique(differences, axis=0, return_counts=True)
    n = counts.sum()
    bits = float(-(counts * np.log2(counts / n)).sum())
    return bits / 8 + 8 * len(counts)


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


class Loop:
    """The model's pieces the loops need, all float: E (the float encoder on a [0, 1] RGB
    picture), S (the sparse synthesis: latent values to the [0, 1] picture before the
    post-network) and the post-network."""

    def __init__(self, model):
        self.model = model
        self.spec = model.spec
        self.decoder = model.decoder
        self.colours = model.spec.input_colours

    def encode(self, rgb01: np.ndarray) -> np.ndarray:
        """(H, W, 3) float RGB in [0, 1] → float latents (C, H/8, W/8)."""
        x = rgb01[..., ::-1] if self.colours == "bgr" else rgb01
        return self.model.encoders["float"].run(["latent"], {"image": np.ascontiguousarray(x, np.float32)[None]})[0][0]

    def synthesize(self, values: np.ndarray) -> np.ndarray:
        """float latent values (C, h, w) → (H, W, 3) float RGB before the post-network."""
        return self.decoder.synthesis(values)[0].transpose(1, 2, 0)

    def picture(self, synthesized: np.ndarray) -> np.ndarray:
        """(H, W, 3) synthesized → the uint8 RGB picture the viewer shows (post-network applied)."""
        return self.decoder.finish(np.ascontiguousarray(synthesized.transpose(2, 0, 1), np.float32)[None])


def block_grid(picture: np.ndarray, block: int) -> tuple[int, int, tuple[int, int], tuple]:
    """(H, W, the motion blocks' grid, the padding that makes H x W whole blocks) of a picture whose
    sides are multiples of 8 (dct8's blocks), else ValueError."""
    h, w = picture.shape[:2]
    if h % 8 or w % 8:
        raise ValueError(f"the proxy takes pictures whose sides are multiples of 8, not {w}x{h}")
    grid = (-(-h // block), -(-w // block))
    return h, w, grid, ((0, grid[0] * block - h), (0, grid[1] * block - w))


def block_decision(still: np.ndarray, q: np.ndarray, fix_point: int, noise: float,
                   bits_per_value: float) -> tuple[np.ndarray, float]:
    """caed.temporal's block decision in quantizer steps: send a position when the error skipping it
    leaves (`still`, float latents (h, w, C)), less the noise floor, exceeds lambda times its
    estimated bits (`bits_per_value` per non-zero of its residual `q`, plus one). Returns the
    positions sent and the noise level to carry to the next frame."""
    from caed.temporal import LAMBDA_PER_STEP2, NOISE_FLOOR_FACTOR, NOISE_RISE

    d_skip = np.einsum("ijk,ijk->ij", still, still) * 4.0 ** fix_point
    noise = min(float(np.median(d_skip)), noise * NOISE_RISE)
    estimated = bits_per_value * (np.count_nonzero(q, axis=2) + 1)
    return d_skip - NOISE_FLOOR_FACTOR * noise > LAMBDA_PER_STEP2 * estimated, noise


def closed_loop(loop: Loop, frames: list[np.ndarray], fix_point: int, motion: bool, header_bytes: int,
                block: int = BLOCK, penalty: float = PENALTY, overlapped: bool = True,
                rounding: float = 0.5) -> dict:
    """H.264's loop: one keyframe, then inter frames predicted from the previous frame's picture
    (before the post-network). Mean bpp and PSNR over the frames, the share of positions sent and
    of blocks whose vector is not (0, 0)."""
    from caed.codecs.arith import ArithCodec
    from caed.fixed_point import dequantize, encoder_input_float, psnr, quantize_latents

    codec = ArithCodec()
    h, w, grid, padding = block_grid(frames[0], block)
    bias = loop.synthesize(np.zeros((loop.spec.latent_shape[2], h // 8, w // 8), np.float32))
    rates, qualities, moving, sent_share = [], [], [], []
    reconstruction = state = None
    noise, bits_per_value = np.inf, 6.0
    for rgb in frames:
        exact = encoder_input_float(rgb, loop.spec.input_fix_point, "rgb")  # the daemon's input, in [0, 1]
        vector_cost = 0.0
        if reconstruction is None:
            q = quantize_latents(loop.encode(exact).transpose(1, 2, 0), fix_point)
            payload, state = codec.encode_keyframe(np.ascontiguousarray(q))
            reconstruction = loop.synthesize(dequantize(q.transpose(2, 0, 1), fix_point))
        else:
            vectors = np.zeros((*grid, 2), np.int64)
            if motion:
                reference = np.clip(reconstruction, 0.0, 1.0)
                vectors = block_motion(np.pad(luma(exact), padding, mode="edge"),
                                       np.pad(luma(reference), padding, mode="edge"), block, SEARCH, penalty)
            shift = compensate_overlapped if overlapped else compensate
            prediction = shift(np.pad(reconstruction, (*padding, (0, 0)), mode="edge"), vectors, block)[:h, :w]
            current = loop.encode(exact)
            error = (current - loop.encode(prediction)).transpose(1, 2, 0)
            q = quantize_residual(error, fix_point, rounding)
            # what skipping leaves is measured against the reference where it is: a skipped block is a copy
            still = error if not motion else (current - loop.encode(reconstruction)).transpose(1, 2, 0)
            sent, noise = block_decision(still, q, fix_point, noise, bits_per_value)
            if motion:
                # Blocks with no position sent copy the reference (their vector is dropped); the
                # prediction is formed again from the vectors kept, and the sent residuals
                # taken against it.
                used = np.zeros(grid, bool)
                ys, xs = np.nonzero(sent)
                used[ys * 8 // block, xs * 8 // block] = True
                vectors[~used] = 0
                prediction = shift(np.pad(reconstruction, (*padding, (0, 0)), mode="edge"), vectors, block)[:h, :w]
                q = quantize_residual((current - loop.encode(prediction)).transpose(1, 2, 0), fix_point, rounding)
                moving.append(float(np.mean(np.any(vectors != 0, axis=-1))))
                vector_cost = vector_bytes(vectors)
            q[~sent] = 0
            sent_share.append(float(sent.mean()))
            payload, state = codec.encode_residuals(np.ascontiguousarray(q), state)
            if np.count_nonzero(q):
                bits_per_value = 8 * len(payload) / np.count_nonzero(q)
            reconstruction = prediction + loop.synthesize(dequantize(q.transpose(2, 0, 1), fix_point)) - bias
        rates.append((len(payload) + header_bytes + vector_cost) * 8 / (h * w))
        qualities.append(psnr(rgb, loop.picture(reconstruction)))
    return {"bpp": round(float(np.mean(rates)), 5), "psnr": round(float(np.mean(qualities)), 4), "fix_point": fix_point,
            "moving_blocks": round(float(np.mean(moving)), 4) if moving else None,
            "blocks_sent": round(float(np.mean(sent_share)), 4) if sent_share else None}


def latent_loop(loop: Loop, frames: list[np.ndarray], fix_point: int, motion: bool, header_bytes: int,
                block: int = BLOCK, penalty: float = PENALTY, overlapped: bool = True,
                rounding: float = 0.5) -> dict:
    """The reference held as latent values, as today's viewer holds it: a skipped position keeps its
    values, a sent one becomes its prediction plus the quantized residual. A position's prediction
    is the reference's own values (today's inter frames: with rounding 0.5 the residual is exactly
    today's, the current latents less the reference's) or, with motion, E of the reference's
    synthesized picture shifted by the vectors, whichever leaves fewer non-zero residual values;
    the choice costs each sent position its share of the choices' entropy. Values predicted
    through motion are real numbers (both ends would compute them alike, in integers), and the
    picture shown is always the synthesis of the latent values, as today."""
    from caed.codecs.arith import ArithCodec
    from caed.fixed_point import dequantize, encoder_input_float, psnr, quantize_latents

    codec = ArithCodec()
    h, w, grid, padding = block_grid(frames[0], block)
    shift = compensate_overlapped if overlapped else compensate
    step = np.float32(2.0 ** -fix_point)
    rates, qualities, moving, sent_share, predicted_share = [], [], [], [], []
    values = state = None
    noise, bits_per_value = np.inf, 6.0
    for rgb in frames:
        current = loop.encode(encoder_input_float(rgb, loop.spec.input_fix_point, "rgb"))
        side_bytes = 0.0
        if values is None:
            q = quantize_latents(current.transpose(1, 2, 0), fix_point)
            payload, state = codec.encode_keyframe(np.ascontiguousarray(q))
            values = dequantize(q.transpose(2, 0, 1), fix_point)
        else:
            still = (current - values).transpose(1, 2, 0)
            q = quantize_residual(still, fix_point, rounding)
            base = values
            if motion:
                picture = loop.synthesize(values)
                exact = encoder_input_float(rgb, loop.spec.input_fix_point, "rgb")
                vectors = block_motion(np.pad(luma(exact), padding, mode="edge"),
                                       np.pad(luma(np.clip(picture, 0.0, 1.0)), padding, mode="edge"), block, SEARCH,
                                       penalty)
                padded = np.pad(picture, (*padding, (0, 0)), mode="edge")
                shifted = loop.encode(shift(padded, vectors, block)[:h, :w])
                q_moved = quantize_residual((current - shifted).transpose(1, 2, 0), fix_point, rounding)
                use = np.count_nonzero(q_moved, axis=2) < np.count_nonzero(q, axis=2)
                q = np.where(use[..., None], q_moved, q)
            sent, noise = block_decision(still, q, fix_point, noise, bits_per_value)
            if motion:
                # Vectors of blocks where no sent position uses them are dropped, the prediction is
                # formed again from those kept, and the positions using it take their residual
                # against it.
                use &= sent
                kept = np.zeros(grid, bool)
                ys, xs = np.nonzero(use)
                kept[ys * 8 // block, xs * 8 // block] = True
                vectors[~kept] = 0
                shifted = loop.encode(shift(padded, vectors, block)[:h, :w])
                q_moved = quantize_residual((current - shifted).transpose(1, 2, 0), fix_point, rounding)
                q = np.where(use[..., None], q_moved, q)
                base = np.where(use[None], shifted, values)
                moving.append(float(np.mean(np.any(vectors != 0, axis=-1))))
                predicted_share.append(float(use.sum() / max(1, sent.sum())))
                side_bytes = vector_bytes(vectors) + choice_bytes(use[sent])
            q[~sent] = 0
            sent_share.append(float(sent.mean()))
            payload, state = codec.encode_residuals(np.ascontiguousarray(q), state)
            if np.count_nonzero(q):
                bits_per_value = 8 * len(payload) / np.count_nonzero(q)
            values = np.where(sent[None], base + q.transpose(2, 0, 1) * step, values).astype(np.float32)
        rates.append((len(payload) + header_bytes + side_bytes) * 8 / (h * w))
        qualities.append(psnr(rgb, loop.picture(loop.synthesize(values))[:h, :w]))
    return {"bpp": round(float(np.mean(rates)), 5), "psnr": round(float(np.mean(qualities)), 4), "fix_point": fix_point,
            "blocks_sent": round(float(np.mean(sent_share)), 4) if sent_share else None,
            "moving_blocks": round(float(np.mean(moving)), 4) if moving else None,
            "sent_predicted_by_motion": round(float(np.mean(predicted_share)), 4) if predicted_share else None}


def choice_bytes(choices: np.ndarray) -> float:
    """Binary choices at their empirical entropy, in bytes."""
    n, ones = choices.size, int(np.count_nonzero(choices))
    if n == 0 or ones in (0, n):
        return 0.0
    p = ones / n
    return n * float(-(p * np.log2(p) + (1 - p) * np.log2(1 - p))) / 8


def quantize_residual(error: np.ndarray, fix_point: int, rounding: float) -> np.ndarray:
    """Residual latents at `fix_point`: |e| rounded down after adding `rounding` steps (0.5: to
    nearest, as the intra latents; H.264's encoders use ~1/6 for inter residuals, a dead zone that
    sends the reference's own quantization noise as zeros)."""
    from caed.fixed_point import quantize_latents

    if rounding == 0.5:
        return quantize_latents(error, fix_point)
    steps = error * 2.0 ** fix_point
    return np.clip(np.sign(steps) * np.floor(np.abs(steps) + rounding), -128, 127).astype(np.int8)


def psnr_only(reference: np.ndarray, decoded: np.ndarray, nbytes: int):
    """models.evaluate.measure without MS-SSIM (the target is PSNR; MS-SSIM at 720p costs minutes)."""
    from caed.fixed_point import psnr
    from caed_models.evaluate import Point
    from caed_models.metrics import bpp

    h, w = reference.shape[:2]
    return Point(bpp(nbytes, h, w), psnr(reference, decoded), float("nan"))


def header_bytes(spec, shape: tuple[int, int, int], picture: tuple[int, int]) -> int:
    """The caed wire message's bytes beyond its payload, for an inter frame."""
    from caed.wire import FrameEncoder

    parts = FrameEncoder("eval", spec.model_id, "arith").message(shape, b"", picture=picture, fix_point=0, seq=1,
                                                                ref_seq=0, frame_index=1, t_capture_ns=0)
    return sum(len(p) for p in parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--rates", type=comma_separated(int), default="0,1,2,3,4",
                   help="fix point reductions from the finest (dct8-q0..q4)")
    p.add_argument("--block", type=int, default=BLOCK, help="motion block size in pixels")
    p.add_argument("--penalty", type=float, default=PENALTY * 255 / 256,
                   help="levels (of 255) per pixel a vector must save per pixel of its length")
    p.add_argument("--domain", choices=("pixel", "latent"), default="pixel",
                   help="pixel: closed_loop (H.264's loop); latent: latent_loop (today's reference, predicted through motion)")
    p.add_argument("--plain-blocks", action="store_true",
                   help="block motion compensation without overlap (seams where vectors differ)")
    p.add_argument("--rounding", type=float, default=0.5,
                   help="inter residuals' rounding offset in steps (0.5: nearest; e.g. 0.17: a dead zone)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from caed.manifest import find
    from caed_models.evaluate import ModelCodec, family_finest
    from caed_models.metrics import bd_rate
    from caed.fixed_point import psnr
    from caed_models.video import X264_CRF, X264_LIVE, evaluate_video, ffmpeg_point, read_frames

    spec = family_finest(find("dct8-q0"))
    frames, fps = read_frames(args.video, args.frames, None)
    started = time.monotonic()
    result = evaluate_video(frames, fps, spec, "arith", psnr_only, reference="previous", rates=args.rates,
                            progress=lambda s: print(s, file=sys.stderr))
    # x264 with every frame intra (issue 14's `-g 1` row): with caed-intra it separates what the
    # pictures cost alone from what each coder's inter frames save.
    intra = list(X264_LIVE)
    intra[intra.index("-g") + 1] = "1"
    points = []
    for crf in X264_CRF:
        rate, decoded = ffmpeg_point(frames, fps, ["-c:v", "libx264", *intra, "-crf", str(crf), "-f", "h264"], ".h264")
        points.append({"bpp": round(rate, 5), "psnr": round(float(np.mean([psnr(f, d) for f, d in zip(frames, decoded)])), 4),
                       "setting": crf})
    result["codecs"]["x264-intra"] = sorted(points, key=lambda q: q["bpp"])
    model = ModelCodec(spec)
    loop = Loop(model)
    h, w = frames[0].shape[:2]
    overhead = header_bytes(spec, (h // 8, w // 8, spec.latent_shape[2]), (h, w))
    run = closed_loop if args.domain == "pixel" else latent_loop
    for name, motion in (("zero-motion", False), ("motion", True)):
        points = []
        for k in args.rates:
            point = run(loop, frames, spec.latent_fix_point - k, motion, overhead, args.block,
                        args.penalty * args.block ** 2 / 255, not args.plain_blocks, args.rounding)
            print(f"{name} fix point {point['fix_point']}: {point}", file=sys.stderr)
            points.append(point)
        result["codecs"][f"proxy-{name}"] = sorted(points, key=lambda q: q["bpp"])
    result["video"] = args.video.name
    result["proxy"] = {"block": args.block, "search": SEARCH, "penalty_levels_per_pixel": args.penalty,
                       "overlapped": not args.plain_blocks, "rounding": args.rounding,
                       "domain": args.domain}
    curves = {name: [(q["bpp"], q["psnr"]) for q in points] for name, points in result["codecs"].items()}
    result["bd_rate_psnr"] = {anchor: {name: None if (v := bd_rate(curves[anchor], curve)) is None else round(v, 2)
                                       for name, curve in curves.items() if name != anchor}
                              for anchor in ("caed-intra", "caed-temporal", "x264-live", "x264-intra")}
    result["seconds"] = round(time.monotonic() - started)
    for anchor, rows in result["bd_rate_psnr"].items():
        print(f"BD-rate (PSNR) vs {anchor}: " + ", ".join(
            f"{name} {'n/a' if v is None else f'{v:+.1f} %'}" for name, v in rows.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
