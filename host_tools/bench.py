"""`caed-bench`: measure the daemon's hot paths against baselines taken in the same run.

Every figure is a ratio or a difference against something measured seconds earlier on the same
machine, so a shared or throttled machine shifts both sides alike:
- preprocess: the daemon's SIMD quantization vs the naive float numpy path and vs one cv2.LUT
  pass (speed-ups, and bit-equality);
- encoder: achieved GFLOP/s vs a float32 numpy matmul's GFLOP/s (same threads);
- daemon CPU per frame outside the encoder, while streaming as deployed: a 30 fps camera, the
  default workers and codec, a subscriber in another process draining the socket. It is the
  whole process's CPU time less the encoder's runs and the source's (here rendering the synthetic
  camera, reported beside it): the pipeline's threads (preprocess and submit, payload compression
  on the workers, the publisher) and the others they wake ("other": ZeroMQ's I/O thread...);
- decoder: the viewer's decoder (sparse synthesis + int8 decoder_post where the model ships them,
  else the int8 or fp32 decoder.onnx) on one 512x768 stream with all cores (decoder_fps: as many
  frames at once as cores, one thread each, as the viewer's workers decode one stream;
  decoder_ms_p50, one frame on one thread, and p10-p90) beside the whole fp32 decoder's figures timed in turns with it, and
  where the time goes in each: per part of the model (synthesis: ONNX Runtime's conv or the C
  kernel; the half-resolution post-network; layout ops) from ONNX Runtime's
  per-node profile; the C kernel alone in thread CPU time;
- codec: the default payload codec's encode and decode time per frame (one thread, p50 over 50 or
  more camera frames' latents) and bits per pixel, beside zstd-planes' timed in turns with it;
- loopback end-to-end latency (capture → decoded) minus encoder and decoder time, p50/p99, with
  frames paced so that none waits behind another; the first WARMUP_FRAMES (first runs of each
  session and socket) are left out.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from caed import manifest
from caed.cli import DaemonConfig
from caed.codecs import create_codec
from caed.encoders.onnx import OnnxEncoder
from caed.fixed_point import cover_and_crop, dequantize, padded_size, quantize_float
from caed.metrics import DaemonMetrics
from caed.pipeline import Pipeline
from caed.preprocess import Preprocessor
from caed.publisher import ZmqPublisher
from caed.sources import LatestFrameSource, SyntheticSource
from caed.tuning import keep_freed_memory, single_threaded_opencv
from caed.wire import FrameEncoder

WARMUP_FRAMES = 2


def best_of(fn, repeats: int, inner: int = 1) -> float:
    """Best wall time of one call (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def naive_preprocess(frame: np.ndarray, width: int, height: int, fix_point: int, colours: str) -> np.ndarray:
    """What the quantization replaces: the float formula applied per pixel in numpy."""
    fitted = cover_and_crop(frame, width, height)
    return quantize_float(fitted if colours == "bgr" else fitted[..., ::-1], fix_point)


def bench_preprocess(spec: manifest.ModelSpec, picture: tuple[int, int], repeats: int) -> dict:
    """At a picture size that is a multiple of the model's (the padding is not timed apart)."""
    h, w = picture
    frame = SyntheticSource(w, h).frame(0)
    pre = Preprocessor(w, h, spec.input_fix_point, spec.input_colours, padded_size(h, w, spec.size_multiple))
    out = np.empty((*pre.input_size, 3), np.int8)
    table = quantize_float(np.arange(256, dtype=np.uint8), spec.input_fix_point)

    def naive():
        return naive_preprocess(frame, w, h, spec.input_fix_point, spec.input_colours)

    def lut():  # the 256-entry table the quantization used to be
        return cv2.LUT(pre.fit_for_encoder(frame), table, dst=out[:h, :w])

    quantize_s = lut_s = naive_s = float("inf")
    for _ in range(repeats):  # taking turns, so that a slow spell of a shared machine hits all alike
        quantize_s = min(quantize_s, best_of(lambda: pre(frame, out), 1, 10))
        lut_s = min(lut_s, best_of(lut, 1, 10))
        naive_s = min(naive_s, best_of(naive, 1, 3))
    expected = naive()
    equal = bool(np.array_equal(pre(frame, out)[:h, :w], expected) and np.array_equal(lut(), expected))
    return {"frame": [h, w], "colours": spec.input_colours, "preprocess_ms": quantize_s * 1e3,
            "lut_ms": lut_s * 1e3, "naive_float_ms": naive_s * 1e3, "speedup": naive_s / quantize_s,
            "speedup_vs_lut": lut_s / quantize_s, "bit_exact": equal}


def bench_encoder(spec: manifest.ModelSpec, picture: tuple[int, int], repeats: int, threads: int) -> dict:
    macs = spec.manifest.get("macs", {}).get("encoder")
    if not macs:
        return {"skipped": f"{spec.name}/model.json has no macs.encoder"}
    encoder = OnnxEncoder(spec, workers=1, threads=threads, picture=picture)
    frame = np.zeros(encoder.input.shape, np.int8)
    # a fully convolutional encoder: its MACs follow the latent area (the manifest's are at its own size)
    macs *= math.prod(encoder.latent.shape[:2]) / math.prod(spec.latent_shape[:2])
    encoder.submit(frame).result()  # warm-up
    enc_s = best_of(lambda: encoder.submit(frame).result(), repeats * 3)  # as many as the matmul
    encoder.close()
    n = 1024
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    mm_s = best_of(lambda: a @ a, repeats * 3)
    enc_gflops = 2 * macs / enc_s / 1e9
    mm_gflops = 2 * n ** 3 / mm_s / 1e9
    return {"model_id": spec.model_id, "threads": threads, "encoder_gmac": macs / 1e9, "encoder_ms": enc_s * 1e3,
            "encoder_gflops": enc_gflops, "matmul_gflops": mm_gflops, "ratio_vs_matmul": enc_gflops / mm_gflops}


_DRAIN = """
import sys, time
from caed_host.subscriber import Subscriber
sub, received, last = Subscriber([sys.argv[1]]), 0, None
print("ready", flush=True)
while last is None or time.monotonic() - last < 1.0:
    batch = sub.receive(0.2)
    if batch:
        received, last = received + len(batch), time.monotonic()
print(received, flush=True)
"""


def camera_latents(spec: manifest.ModelSpec, picture: tuple[int, int], frames: int, threads: int = 1) -> list:
    """The int8 latents (H, W, C) of the synthetic camera's first views at `picture` size, as the
    daemon computes them (preprocessing, padding, the ONNX encoder)."""
    h, w = picture
    encoder = OnnxEncoder(spec, workers=1, threads=threads, picture=picture)
    camera = SyntheticSource(w, h)
    pre = Preprocessor(w, h, spec.input_fix_point, spec.input_colours, encoder.input.shape[:2])
    latents = [encoder.submit(pre(camera.frame(7 * i))).result() for i in range(frames)]
    encoder.close()
    return latents


def bench_codec(spec: manifest.ModelSpec, picture: tuple[int, int], frames: int) -> dict:
    """The default payload codec against zstd-planes on the latents of `frames` camera frames (the
    synthetic camera's views), one thread, the two taking turns frame by frame so that a slow
    spell of a shared machine hits both alike. p50 wall time per frame and p50 CPU time of the
    coding thread (the steadier figure on a loaded machine); bits per pixel of the payloads."""
    name = DaemonConfig.codec
    h, w = picture
    latents = camera_latents(spec, picture, frames)
    codecs = {name: create_codec(name), "zstd-planes": create_codec("zstd-planes")}
    timing = {k: {"encode": [], "decode": [], "encode_cpu": [], "decode_cpu": [], "bytes": 0} for k in codecs}
    for q in latents:
        for key, codec in codecs.items():
            t, c = time.perf_counter(), time.thread_time()
            payload = codec.encode(q)
            t1, c1 = time.perf_counter(), time.thread_time()
            planes = codec.decode(payload, q.shape)
            t2, c2 = time.perf_counter(), time.thread_time()
            if not np.array_equal(planes, q.transpose(2, 0, 1)):
                raise RuntimeError(f"{key} does not round-trip")
            timing[key]["encode"].append(t1 - t)
            timing[key]["decode"].append(t2 - t1)
            timing[key]["encode_cpu"].append(c1 - c)
            timing[key]["decode_cpu"].append(c2 - c1)
            timing[key]["bytes"] += len(payload)

    def p50_ms(key: str, what: str) -> float:
        return float(np.percentile(timing[key][what], 50)) * 1e3

    def bpp(key: str) -> float:
        return 8 * timing[key]["bytes"] / frames / (h * w)

    return {"name": name, "frames": frames, "frame": [h, w],
            "encode_ms": p50_ms(name, "encode"), "decode_ms": p50_ms(name, "decode"),
            "encode_cpu_ms": p50_ms(name, "encode_cpu"), "decode_cpu_ms": p50_ms(name, "decode_cpu"),
            "zstd_planes_encode_ms": p50_ms("zstd-planes", "encode"),
            "zstd_planes_decode_ms": p50_ms("zstd-planes", "decode"),
            "bits_per_pixel": bpp(name), "zstd_planes_bits_per_pixel": bpp("zstd-planes")}


def bench_streaming(spec: manifest.ModelSpec, picture: tuple[int, int], frames: int) -> dict:
    """CPU time per frame of the real pipeline streaming from a 30 fps source to a subscriber in
    another process: the whole process's CPU time (OpenCV's pool and ZeroMQ's I/O thread too)
    less the encoder's runs, as the pipeline counts it, and less the source's."""
    h, w = picture
    encoder = OnnxEncoder(spec, workers=DaemonConfig.workers, threads=1, picture=picture)
    publisher = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=DaemonConfig.sndhwm)
    drain = subprocess.Popen([sys.executable, "-c", _DRAIN, publisher.endpoint], stdout=subprocess.PIPE, text=True)
    drain.stdout.readline()
    time.sleep(0.3)  # the subscription reaches the publisher
    pipeline = Pipeline(LatestFrameSource(SyntheticSource(w, h, fps=30)), encoder, publisher,
                        FrameEncoder("bench", spec.model_id, DaemonConfig.codec), DaemonMetrics())
    encoder_start = encoder.run_cpu_seconds
    summary = pipeline.run(threading.Event(), frames=frames)
    try:
        received = int(drain.communicate(timeout=30)[0].split()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        drain.kill()
        received = 0
    encoder.close()
    publisher.close()
    n = max(summary["frames_published"], 1)
    cpu = summary["cpu_ms_per_frame"]
    source_ms = 1e3 * pipeline.source.cpu_seconds / n
    return {
        "frames": summary["frames_published"], "frames_received": received, "fps": summary["fps"],
        "workers": encoder.workers, "codec": DaemonConfig.codec,
        "bits_per_pixel": 8 * summary["bytes_published"] / n / (h * w),
        "daemon_cpu_ms_per_frame_excluding_source": summary["cpu_ms_per_frame_outside_encoder"] - source_ms,
        "daemon_cpu_ms_per_frame": {k: cpu[k] for k in ("preprocess", "compress", "publish", "other")},
        "encoder_cpu_ms_per_frame": 1e3 * (encoder.run_cpu_seconds - encoder_start) / n,
        "source_cpu_ms_per_frame": source_ms,
    }


def bench_latency(spec: manifest.ModelSpec, picture: tuple[int, int], frames: int) -> dict:
    """The real daemon pipeline and a real subscriber over loopback TCP; one worker, paced source."""
    from .decoder import DecoderSet
    from .metrics import ViewerMetrics
    from .sinks import NullSink
    from .subscriber import Subscriber
    from .viewer import Viewer

    h, w = picture
    encoder = OnnxEncoder(spec, workers=1, threads=1, picture=picture)
    jobs: list[tuple[int, int]] = []  # (start, end) of every encoder job, CLOCK_REALTIME ns
    publisher = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=100)
    subscriber = Subscriber([publisher.endpoint], rcvhwm=100)
    viewer = Viewer(subscriber, DecoderSet(threads=1), NullSink(), ViewerMetrics())
    one = np.zeros(encoder.input.shape, np.int8)
    latents = encoder.submit(one).result()
    decoder = viewer.decoders.get(spec.model_id, encoder.latent.shape, picture)
    model_s = best_of(lambda: encoder.submit(one).result(), 3) + best_of(
        lambda: decoder.decode(latents.transpose(2, 0, 1), spec.latent_fix_point), 3)
    period = 1.5 * model_s + 0.02  # frames never queue behind each other: latency is one frame's path
    metrics = DaemonMetrics()
    latest = LatestFrameSource(SyntheticSource(w, h, fps=1 / period))
    pipeline = Pipeline(latest, encoder, publisher, FrameEncoder("bench", spec.model_id, DaemonConfig.codec), metrics)
    encoder.on_busy = lambda s: jobs.append((time.time_ns() - int(s * 1e9), time.time_ns()))
    stop = threading.Event()
    view_thread = threading.Thread(target=lambda: viewer.run(stop, frames=frames + WARMUP_FRAMES,
                                                             duration=period * (frames + WARMUP_FRAMES) + 30))
    view_thread.start()
    time.sleep(0.3)
    summary = pipeline.run(threading.Event(), frames=frames + WARMUP_FRAMES + 2)
    view_thread.join(timeout=3 * period + 10)  # the last frames are still being decoded
    stop.set()
    view_thread.join()
    encoder.close()
    publisher.close()
    subscriber.close()
    # Each decoded frame's encoder job is the first one that started after its capture.
    encode_ms = []
    for t_capture in viewer.captures_ns:
        encode_ms.append(next((end - start for start, end in jobs if start >= t_capture), 0) / 1e6)
    st = viewer.stats
    latency, decode = np.array(st.latency_ms)[WARMUP_FRAMES:], np.array(st.decode_ms)[WARMUP_FRAMES:]
    encode = np.array(encode_ms)[WARMUP_FRAMES:]
    overhead = latency - decode - encode
    return {
        "frames": len(overhead),
        "warmup_frames_excluded": WARMUP_FRAMES,
        # (the viewer runs in this process: "other" would count its decoder, so it is left out)
        "paced_cpu_ms_per_frame": {k: v for k, v in summary["cpu_ms_per_frame"].items() if k != "other"},
        "latency_ms_p50": float(np.percentile(latency, 50)),
        "encoder_ms_p50": float(np.percentile(encode, 50)),
        "decoder_ms_p50": float(np.percentile(decode, 50)),
        "latency_beyond_model_ms_p50": float(np.percentile(overhead, 50)),
        "latency_beyond_model_ms_p99": float(np.percentile(overhead, 99)),
    }


DECODER_PARTS = (("/synthesis/", "synthesis"), ("/post/", "post"))  # in decoder.onnx's node names under
# /inner/, in decoder_post.onnx's at the top


LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "ReorderInput", "ReorderOutput", "DepthToSpace", "SpaceToDepth",
              "QuantizeLinear", "DequantizeLinear")


def profile_parts(path: str, feeds: dict[str, np.ndarray], threads: int, runs: int) -> dict:
    """Mean ms per run of each part of an ONNX decoder graph, from ONNX Runtime's per-node profile
    (node names carry the module path); 'layout' is every op that only moves or converts data
    (LAYOUT_OPS: reorders and transposes, depth-to-space, int8 quantize/dequantize)."""
    import tempfile

    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "decoder")
        session = onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    total: dict[str, float] = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        part = next((p for module, p in DECODER_PARTS if module in e["name"]), "layout")
        if e["args"].get("op_name") in LAYOUT_OPS:
            part = "layout"
        total[part] = total.get(part, 0.0) + e["dur"] / 1e3
    runs_seen = runs + 1  # the warm-up run is in the profile too
    return {part: ms / runs_seen for part, ms in sorted(total.items())}


def decoder_profile(decoder, values: np.ndarray, threads: int, runs: int) -> dict:
    """profile_parts of what ONNX Runtime runs of `decoder`; for a split decoder, its `synthesis`
    part is the C kernel's mean wall time over `runs` (its graph holds the rest)."""
    from .decoder import SplitDecoder

    if not isinstance(decoder, SplitDecoder):
        return profile_parts(str(decoder.path), {"latent": values[None]}, threads, runs)
    picture = decoder.synthesis(values)
    parts = profile_parts(str(decoder.path), {"synthesized": picture}, threads, runs)
    t0 = time.perf_counter()
    for _ in range(runs):
        decoder.synthesis(values)
    return {**parts, "synthesis": (time.perf_counter() - t0) / runs * 1e3}


def spread_ms(seconds: list[float]) -> dict:
    """p10 / p50 / p90 of timings, in ms."""
    return {f"p{q}": float(np.percentile(seconds, q)) * 1e3 for q in (10, 50, 90)}


def decode_throughput(decoder, planes: np.ndarray, fix_point: int, workers: int, frames: int) -> float:
    """Frames per second of one stream decoded the way the viewer's StreamPool decodes it on
    `workers` cores: `workers` frames at a time, each on its own worker, sharing one decoder."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: decoder.decode(planes, fix_point), range(workers)))  # warm every worker
        t0 = time.perf_counter()
        list(pool.map(lambda _: decoder.decode(planes, fix_point), range(frames)))
        return frames / (time.perf_counter() - t0)


def bench_decoder(spec: manifest.ModelSpec, picture: tuple[int, int], repeats: int, threads: int) -> dict:
    """One stream of `picture`-sized frames on `threads` cores, as caed-view decodes it: the split
    decoder (sparse synthesis + int8 decoder_post, where the model ships it) against the whole fp32
    decoder (the baseline), timed in turns. decoder_fps: frames a second with `threads` frames
    decoded at once, one thread each (the viewer's workers: more frames a second than one frame at
    a time on every thread); decoder_ms_p50: one frame on one thread (its latency), and, as
    before, on `threads` threads. Then each is profiled per part, and the sparse synthesis alone is
    timed in the decoding thread's CPU time (the steadier figure on a loaded machine)."""
    from .decoder import OnnxDecoder, SplitDecoder, load_decoder

    h, w = picture
    (latents,) = camera_latents(spec, picture, 1, threads)
    planes = np.ascontiguousarray(latents.transpose(2, 0, 1))
    one_thread = {"decoder": load_decoder(spec, 1), "fp32": OnnxDecoder(spec, 1, precision="fp32")}
    all_threads = {"decoder": load_decoder(spec, threads), "fp32": OnnxDecoder(spec, threads, precision="fp32")}
    times: dict[str, list[float]] = {k: [] for k in ("decoder", "fp32", "decoder_all", "fp32_all")}
    fps: dict[str, list[float]] = {k: [] for k in one_thread}
    for d in (*one_thread.values(), *all_threads.values()):
        d.decode(planes, spec.latent_fix_point)
    for _ in range(repeats):  # in turns, so that a slow spell of a shared machine hits both alike
        for name in one_thread:
            for key, d in ((name, one_thread[name]), (f"{name}_all", all_threads[name])):
                for _ in range(4):
                    t0 = time.perf_counter()
                    d.decode(planes, spec.latent_fix_point)
                    times[key].append(time.perf_counter() - t0)
            fps[name].append(decode_throughput(one_thread[name], planes, spec.latent_fix_point, threads, 4 * threads))
    p50 = {k: float(np.percentile(v, 50)) * 1e3 for k, v in times.items()}
    values = dequantize(planes, spec.latent_fix_point)
    viewer = one_thread["decoder"]
    result = {
        "model_id": spec.model_id, "frame": [h, w], "threads": threads, "decoder": viewer.path.name,
        "sparse_synthesis": isinstance(viewer, SplitDecoder),
        "decoder_gmac": spec.manifest.get("macs", {}).get("decoder", 0) / 1e9,
        "decoder_fps": float(np.median(fps["decoder"])), "fp32_decoder_fps": float(np.median(fps["fp32"])),
        "decoder_fps_runs": fps["decoder"], "fp32_decoder_fps_runs": fps["fp32"],
        "decoder_ms_p50": p50["decoder"], "fp32_decoder_ms_p50": p50["fp32"],
        "decoder_all_threads_ms_p50": p50["decoder_all"], "fp32_decoder_all_threads_ms_p50": p50["fp32_all"],
        "speedup_vs_fp32": float(np.median(fps["decoder"]) / np.median(fps["fp32"])),
        "decoder_ms": spread_ms(times["decoder"]), "fp32_decoder_ms": spread_ms(times["fp32"]),
        "profile_ms_per_part": {name: decoder_profile(d, values, 1, repeats) for name, d in one_thread.items()},
    }
    if isinstance(viewer, SplitDecoder):
        cpu = []
        for _ in range(4 * repeats):
            t0 = time.thread_time()
            viewer.synthesis(values)
            cpu.append(time.thread_time() - t0)
        result["synthesis_cpu_ms"] = spread_ms(cpu)
        result["latent_nonzero_share"] = float(np.count_nonzero(values) / values.size)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="caed-bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=manifest.DEFAULT_MODEL, help="shipped model name or model.json path")
    p.add_argument("--json", type=Path, default=Path("bench.json"), help="output file (default: bench.json)")
    p.add_argument("--repeats", type=int, default=5, help="timing repeats; the best is kept (default: 5)")
    p.add_argument("--frames", type=int, default=200,
                   help="frames through the paced latency run, whose p99 is only more than the worst frame with "
                        "100 or more; the streaming run takes 5x as many (default: 200)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for the encoder and matmul comparison (default: all cores)")
    p.add_argument("--picture", default="", help="HxW of the camera's pictures, e.g. 720x1280 "
                                                 "(default: the model's input size)")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.frames < 2 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1, --frames >= 2")
    try:
        spec = manifest.find(args.model)
    except manifest.ModelNotFound as e:
        p.exit(2, f"caed-bench: error: {e}\n")
    try:
        picture = tuple(int(v) for v in args.picture.lower().split("x")) if args.picture else spec.input_shape[:2]
    except ValueError:
        p.error(f"--picture must look like 720x1280, got {args.picture!r}")
    if len(picture) != 2 or min(picture) < 1:
        p.error(f"--picture must be two positive sides, got {args.picture!r}")
    single_threaded_opencv()  # as the daemon and the viewer run
    keep_freed_memory()
    result = {"model": spec.model_id, "picture": list(picture), "cpu_count": os.cpu_count(),
              "python": sys.version.split()[0]}
    for name, run in (("preprocess", lambda: bench_preprocess(spec, picture, args.repeats)),
                      ("encoder", lambda: bench_encoder(spec, picture, args.repeats, args.threads)),
                      ("decoder", lambda: bench_decoder(spec, picture, args.repeats, args.threads)),
                      ("codec", lambda: bench_codec(spec, picture, max(50, args.frames // 4))),
                      ("streaming", lambda: bench_streaming(spec, picture, 5 * args.frames)),
                      ("latency", lambda: bench_latency(spec, picture, args.frames))):
        print(f"caed-bench: {name} ...", file=sys.stderr, flush=True)
        result[name] = run()
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
