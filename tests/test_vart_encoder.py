"""VartEncoder on the vart/xir test double: tensors, scaling, subgraph choice, errors, ordering."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from dpu_double_xmodel import write_xmodel
from tiny_models import write_tiny_encoder

from caed.encoders.base import EncoderError  # noqa: E402
from caed.encoders.vart import VartEncoder, wait_job  # noqa: E402

H, W, C = 8, 12, 4
IN_FP, LATENT_FP = 6, 3  # not the defaults 7/4, so a swapped or hard-coded scale shows


@pytest.fixture(autouse=True)
def double(dpu_double):
    """The backend imports vart and xir: every test here runs it on the double (conftest.py)."""
    return dpu_double


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return write_tiny_encoder(tmp_path_factory.mktemp("onnx") / "tiny.onnx", H, W, C,
                              input_fix_point=IN_FP, latent_fix_point=LATENT_FP)


def xmodel(tmp_path, onnx_model, name="m.xmodel", **options) -> Path:
    options.setdefault("latency_ms", 0.0)
    return write_xmodel(tmp_path / name, encoder_onnx=onnx_model, input_shape=(H, W, 3), input_fix_point=IN_FP,
                        latent_shape=(H // 2, W // 2, C), latent_fix_point=LATENT_FP, **options)


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(-64, 64, size=(H, W, 3), dtype=np.int8) for _ in range(n)]


@pytest.fixture
def encoder(tmp_path, onnx_model):
    enc = VartEncoder(xmodel(tmp_path, onnx_model), workers=2)
    yield enc
    enc.close()


@pytest.mark.parametrize("picture", [(H, W), (H - 7, W - 3)])
def test_a_picture_the_padded_input_holds_is_accepted(tmp_path, onnx_model, picture):
    enc = VartEncoder(xmodel(tmp_path, onnx_model), workers=1, picture=picture)
    try:
        assert enc.picture == picture and enc.input.shape == (H, W, 3)
    finally:
        enc.close()


def test_tensor_info_comes_from_the_runner_tensors(encoder):
    assert (encoder.input.name, encoder.input.shape, encoder.input.fix_point) == ("image_fix", (H, W, 3), IN_FP)
    assert (encoder.latent.name, encoder.latent.shape, encoder.latent.fix_point) == \
        ("latent_fix", (H // 2, W // 2, C), LATENT_FP)


def test_describe_names_tensors_and_dpu(encoder):
    d = encoder.describe()
    assert d["backend"] == "vart" and d["workers"] == 2 and d["batch"] == 1
    assert d["input"] == {"name": "image_fix", "shape": (H, W, 3), "fix_point": IN_FP, "colours": "rgb"}
    assert d["latent"] == {"name": "latent_fix", "shape": (H // 2, W // 2, C), "fix_point": LATENT_FP}
    assert d["dpu_target"] == "DPUCZDX8G_ISA1_B2304" and d["dpu_fingerprint"] == "0x0101000016010405"
    assert d["subgraph"] == "subgraph_dpu_1" and d["model_id"] == "caed_encoder"


def test_fix_point_scaling_both_ways(encoder, onnx_model):
    """float image -> int8 with 2**input_fp -> DPU -> int8 latents * 2**-latent_fp == the float model."""
    image = np.random.default_rng(5).uniform(0, 0.98, size=(H, W, 3)).astype(np.float32)
    quantized = np.clip(np.rint(image * 2.0 ** encoder.input.fix_point), -128, 127).astype(np.int8)
    latents = encoder.submit(quantized).result(timeout=60)
    assert latents.dtype == np.int8 and latents.shape == encoder.latent.shape
    decoded = latents.astype(np.float32) * 2.0 ** -encoder.latent.fix_point
    reference = ort.InferenceSession(str(onnx_model)).run(None, {"image": image[None]})[0][0].transpose(1, 2, 0)
    np.testing.assert_allclose(decoded, reference, atol=2.0 ** -LATENT_FP + 1e-6)
    assert np.abs(decoded).max() > 2.0 ** -LATENT_FP  # not all zero


def test_batch_slot_zero_is_filled_and_returned(tmp_path, onnx_model):
    single = VartEncoder(xmodel(tmp_path, onnx_model, "one.xmodel"), workers=1)
    batched = VartEncoder(xmodel(tmp_path, onnx_model, "three.xmodel", batch=3), workers=1)
    try:
        assert batched.describe()["batch"] == 3 and batched.input.shape == (H, W, 3)
        for f in frames(3, seed=1):
            np.testing.assert_array_equal(batched.submit(f).result(timeout=60), single.submit(f).result(timeout=60))
    finally:
        single.close()
        batched.close()


def test_picks_the_dpu_subgraph_among_user_and_cpu(tmp_path, onnx_model):
    enc = VartEncoder(xmodel(tmp_path, onnx_model, devices=("USER", "CPU", "DPU", "CPU")), workers=1)
    try:
        assert enc.describe()["subgraph"] == "subgraph_dpu_2"
    finally:
        enc.close()


@pytest.mark.parametrize("devices, message", [
    (("USER", "CPU"), "no DPU subgraph .*subgraph_cpu_1=CPU"),
    ((), "no DPU subgraph .*not partitioned"),
    (("USER", "DPU", "CPU", "DPU"), "2 DPU subgraphs"),
])
def test_subgraph_errors(tmp_path, onnx_model, devices, message):
    with pytest.raises(EncoderError, match=message):
        VartEncoder(xmodel(tmp_path, onnx_model, devices=devices), workers=1)


def test_missing_model_file(tmp_path):
    with pytest.raises(EncoderError, match="xmodel not found: .*nope.xmodel"):
        VartEncoder(tmp_path / "nope.xmodel", workers=1)


def test_unreadable_model_file(tmp_path):
    (tmp_path / "bad.xmodel").write_text("not a model")
    with pytest.raises(EncoderError, match="cannot load xmodel"):
        VartEncoder(tmp_path / "bad.xmodel", workers=1)


def test_runtime_not_installed(tmp_path, onnx_model, monkeypatch):
    path = xmodel(tmp_path, onnx_model)
    monkeypatch.setitem(sys.modules, "vart", None)
    with pytest.raises(EncoderError, match="Vitis AI runtime.*'vart' and 'xir'"):
        VartEncoder(path, workers=1)


def test_a_picture_the_xmodel_cannot_take_is_refused_with_the_size_to_build_and_releases_the_dpu(
        tmp_path, onnx_model):
    with pytest.raises(EncoderError, match=rf"takes {H}x{W} pictures .* source gives 15x20 .* --input 16x24 .*"
                                           rf"resolution = fit"):
        VartEncoder(xmodel(tmp_path, onnx_model), workers=2, picture=(15, 20))
    from vart._device import PROCESS_LOCK
    gc.collect()
    assert PROCESS_LOCK._users == 0  # the probe runner did not keep the DPU


def test_runner_creation_failure_is_an_encoder_error(tmp_path, onnx_model):
    with pytest.raises(EncoderError, match="cannot create a DPU runner: fingerprint mismatch"):
        VartEncoder(xmodel(tmp_path, onnx_model, fingerprint=0x101000016010404), workers=1)


def test_model_id_and_colour_order_from_the_manifest_beside_the_xmodel(tmp_path, onnx_model):
    manifest = {"model_id": "tiny-v1", "input": {"shape": [H, W, 3], "fix_point": IN_FP, "colours": "bgr"},
                "latent": {"shape": [H // 2, W // 2, C], "fix_point": LATENT_FP},
                "encoder": "e.onnx", "decoder": "d.onnx"}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    enc = VartEncoder(xmodel(tmp_path, onnx_model), workers=1)
    try:
        assert (enc.model_id, enc.input_colours) == ("tiny-v1", "bgr")
    finally:
        enc.close()


def test_a_rate_compiled_with_scaled_latents_puts_the_shifted_fix_point_on_the_wire(tmp_path, onnx_model):
    """vitis_build --model <family>-q<k> divides the latents by 2**k: the DPU's int8 values are
    then steps of 2**k, i.e. the wire fix point is the xmodel's minus k (same bytes)."""
    manifest = {"model_id": "tiny-v1", "input": {"shape": [H, W, 3], "fix_point": IN_FP},
                "latent": {"shape": [H // 2, W // 2, C], "fix_point": LATENT_FP - 2},
                "encoder": "e.onnx", "decoder": "d.onnx", "dpu_latent_scale_log2": 2}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    (tmp_path / "plain").mkdir()
    shifted = VartEncoder(xmodel(tmp_path, onnx_model), workers=1)
    plain = VartEncoder(xmodel(tmp_path / "plain", onnx_model), workers=1)
    try:
        assert (shifted.latent.fix_point, plain.latent.fix_point) == (LATENT_FP - 2, LATENT_FP)
        frame = frames(1)[0]
        np.testing.assert_array_equal(shifted.submit(frame).result(), plain.submit(frame).result())
    finally:
        shifted.close()
        plain.close()


@pytest.mark.parametrize("shift", [-1, 17, 1.5, "2"])
def test_a_bad_latent_scale_in_the_manifest_is_refused(tmp_path, onnx_model, shift):
    manifest = {"model_id": "tiny-v1", "input": {"shape": [H, W, 3], "fix_point": IN_FP},
                "latent": {"shape": [H // 2, W // 2, C], "fix_point": LATENT_FP},
                "encoder": "e.onnx", "decoder": "d.onnx", "dpu_latent_scale_log2": shift}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(EncoderError, match="dpu_latent_scale_log2"):
        VartEncoder(xmodel(tmp_path, onnx_model), workers=1)


def test_a_manifest_for_another_model_is_refused(tmp_path, onnx_model):
    manifest = {"model_id": "other", "input": {"shape": [512, 768, 3], "fix_point": 7},
                "latent": {"shape": [62, 94, 32], "fix_point": 5}, "encoder": "e.onnx", "decoder": "d.onnx"}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(EncoderError, match="model.json describes input .* not the same model"):
        VartEncoder(xmodel(tmp_path, onnx_model), workers=1)


def test_bad_frames_are_refused_before_the_runtime(encoder):
    for bad in (np.zeros((H, W, 3), np.uint8), np.zeros((H, W + 2, 3), np.int8)[:, :W],
                np.zeros((H, W, 4), np.int8)):
        with pytest.raises(ValueError):
            encoder.submit(bad)


@pytest.mark.parametrize("api", ["3.x", "1.3", "1.2"])
def test_every_api_generation_encodes_the_same(tmp_path, onnx_model, api):
    reference = VartEncoder(xmodel(tmp_path, onnx_model, "ref.xmodel"), workers=1)
    other = VartEncoder(xmodel(tmp_path, onnx_model, f"{api}.xmodel", api=api), workers=1)
    try:
        for f in frames(2, seed=4):
            np.testing.assert_array_equal(other.submit(f).result(timeout=60), reference.submit(f).result(timeout=60))
    finally:
        reference.close()
        other.close()


def test_wait_job_passes_an_int_job_id_through():
    class IntJobRunner:
        def wait(self, job_id):
            assert isinstance(job_id, int)
            return 0

    assert wait_job(IntJobRunner(), 7) == 0


def test_workers_spread_over_the_cores(double, tmp_path, onnx_model):
    enc = VartEncoder(xmodel(tmp_path, onnx_model, cores=2, latency_ms=30.0), workers=4)
    try:
        futures = [enc.submit(f) for f in frames(8)]
        for fut in futures:
            fut.result(timeout=60)
        slot = enc._runners.get()
        enc._runners.put(slot)
        stats = double.vart.device_of(slot.runner).stats()
        assert sum(stats["jobs_per_core"]) == 8 and min(stats["jobs_per_core"]) >= 1
    finally:
        enc.close()


def test_results_stay_with_their_frames_when_jobs_finish_out_of_order(tmp_path, onnx_model):
    """Job 0 takes 1 s, the others 1 ms on a second core: completion order differs from submission order,
    yet the futures, taken in submission order, give each frame its own latents."""
    enc = VartEncoder(xmodel(tmp_path, onnx_model, cores=2, latency_ms=[1000.0, 1.0]), workers=2)
    reference = VartEncoder(xmodel(tmp_path, onnx_model, "ref.xmodel"), workers=1)
    try:
        batch = frames(4, seed=7)
        finished = []
        lock = threading.Lock()
        futures = []
        for i, f in enumerate(batch):
            fut = enc.submit(f)
            fut.add_done_callback(lambda _, i=i: (lock.acquire(), finished.append(i), lock.release()))
            futures.append(fut)
        results = [fut.result(timeout=60) for fut in futures]
        assert finished[0] != 0  # a later frame finished first
        for f, got in zip(batch, results):
            np.testing.assert_array_equal(got, reference.submit(f).result(timeout=60))
    finally:
        enc.close()
        reference.close()


def test_the_double_is_not_importable_from_the_package():
    code = "import importlib.util, caed.encoders.vart; print(importlib.util.find_spec('vart'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


def test_read_only_frames_are_staged_and_results_are_fresh_arrays(double, encoder):
    frame = frames(1, seed=9)[0]
    writable_result = encoder.submit(frame).result(timeout=60)
    frame.flags.writeable = False  # e.g. a frame made with np.frombuffer; the binding wants writable buffers
    read_only_result = encoder.submit(frame).result(timeout=60)
    np.testing.assert_array_equal(read_only_result, writable_result)
    assert not np.shares_memory(read_only_result, writable_result)


def _hold_dpu_in_another_process(double, path: Path, seconds: float) -> subprocess.Popen:
    code = ("import time, vart, xir; "
            f"g = xir.Graph.deserialize({str(path)!r}); "
            "sg = [c for c in g.get_root_subgraph().toposort_child_subgraph() if c.get_attr('device') == 'DPU'][0]; "
            f"r = vart.Runner.create_runner(sg, 'run'); print('held', flush=True); time.sleep({seconds})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=double.env())
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_check_gives_up_on_a_dpu_held_by_another_process(double, tmp_path, onnx_model):
    path = xmodel(tmp_path, onnx_model)
    holder = _hold_dpu_in_another_process(double, path, 60)
    try:
        with pytest.raises(EncoderError, match="held by another process .*gave up after 0.5 s"):
            VartEncoder(path, workers=1, dpu_wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()


def test_the_service_warns_and_waits_for_the_dpu(double, tmp_path, onnx_model, monkeypatch, caplog):
    import caed.encoders.vart as vart_backend

    monkeypatch.setattr(vart_backend, "LOCK_WARNING_S", 0.2)
    path = xmodel(tmp_path, onnx_model)
    holder = _hold_dpu_in_another_process(double, path, 2)
    try:
        enc = VartEncoder(path, workers=1)
        enc.close()
    finally:
        holder.kill()
        holder.wait()
    assert "another process holds it" in caplog.text
