"""The vart/xir test double behaves like the real binding where the daemon depends on it."""
from __future__ import annotations

import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from dpu_double_xmodel import write_xmodel
from tiny_models import write_tiny_encoder

# Every test here asks for the `dpu_double` fixture (conftest.py): vart and xir are the double's.
ABORT = "SimulatedAbort"  # in parametrize lists, which are built before any fixture exists

H, W, C = 8, 12, 4


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return write_tiny_encoder(tmp_path_factory.mktemp("onnx") / "tiny.onnx", H, W, C,
                              input_fix_point=6, latent_fix_point=3)


def xmodel(tmp_path, onnx_model, **options) -> Path:
    options.setdefault("latency_ms", 0.0)
    return write_xmodel(tmp_path / "m.xmodel", encoder_onnx=onnx_model, input_shape=(H, W, 3), input_fix_point=6,
                        latent_shape=(H // 2, W // 2, C), latent_fix_point=3, **options)


def dpu_subgraphs(graph):
    """The selection helper of the Xilinx samples (inception_v1.py), verbatim in behaviour."""
    root = graph.get_root_subgraph()
    if root.is_leaf:
        return []
    return [cs for cs in root.toposort_child_subgraph()
            if cs.has_attr("device") and cs.get_attr("device").upper() == "DPU"]


def runner_for(dpu_double, path: Path, cls=None):
    cls = cls or dpu_double.vart.Runner
    return cls.create_runner(dpu_subgraphs(dpu_double.xir.Graph.deserialize(str(path)))[0], "run")


def frame(seed=0, batch=1):
    return np.random.default_rng(seed).integers(-20, 64, size=(batch, H, W, 3), dtype=np.int8)


def test_graph_surface_matches_xir(dpu_double, tmp_path, onnx_model):
    g = dpu_double.xir.Graph.deserialize(str(xmodel(tmp_path, onnx_model, devices=("USER", "DPU", "CPU"))))
    root = g.get_root_subgraph()
    children = root.toposort_child_subgraph()
    assert root.is_root and not root.is_leaf and [c.depth for c in children] == [1, 1, 1]
    assert [c.get_attr("device") for c in children] == ["USER", "DPU", "CPU"]
    assert all(c.is_leaf and c.root is root for c in children)
    dpu = dpu_subgraphs(g)[0]
    assert dpu.get_attr("dpu_name") == "DPUCZDX8G_ISA1_B2304"
    (t,) = dpu.get_input_tensors()
    assert (t.name, t.dims, t.ndim, t.dtype, t.get_attr("fix_point")) == ("image_fix", [1, H, W, 3], 4, "xint8", 6)
    assert t.get_element_num() == H * W * 3 == t.get_data_size()
    with pytest.raises(RuntimeError, match="doesn't contain attribute"):
        t.get_attr("no_such_attr")


def test_unpartitioned_graph_has_leaf_root(dpu_double, tmp_path, onnx_model):
    g = dpu_double.xir.Graph.deserialize(str(xmodel(tmp_path, onnx_model, devices=())))
    assert g.get_root_subgraph().is_leaf and dpu_subgraphs(g) == []


def test_deserialize_rejects_other_files(dpu_double, tmp_path):
    (tmp_path / "x.xmodel").write_bytes(b"\x08\x01protobuf")
    with pytest.raises(RuntimeError, match="not an xmodel"):
        dpu_double.xir.Graph.deserialize(str(tmp_path / "x.xmodel"))


def test_runner_tensors_take_the_dpu_batch(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model, batch=3))
    assert [t.dims for t in r.get_input_tensors()] == [[3, H, W, 3]]
    assert [t.dims for t in r.get_output_tensors()] == [[3, H // 2, W // 2, C]]


def test_execute_async_computes_the_quantized_onnx_output(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model, batch=2))
    x = frame(1, batch=2)
    y = np.zeros((2, H // 2, W // 2, C), np.int8)
    job = r.execute_async([x], [y])
    assert job == (1, 0) and r.wait(job) == 0
    session = ort.InferenceSession(str(onnx_model))
    for slot in range(2):
        ref = session.run(None, {"image": x[slot:slot + 1].astype(np.float32) / 2 ** 6})[0][0].transpose(1, 2, 0)
        np.testing.assert_array_equal(y[slot], np.clip(np.rint(ref * 2 ** 3), -128, 127).astype(np.int8))
    assert np.any(y != 0)


def test_float32_buffers_are_converted_like_vart(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model))
    x8 = frame(2)
    y8 = np.zeros((1, H // 2, W // 2, C), np.int8)
    r.wait(r.execute_async([x8], [y8]))
    # float input: VART truncates x * 2**fix_point toward zero; 0.99 LSB above each value keeps it
    xf = (x8.astype(np.float32) + np.where(x8 >= 0, 0.99, -0.99).astype(np.float32) * (x8 != 0)) / 2 ** 6
    yf = np.zeros((1, H // 2, W // 2, C), np.float32)
    r.wait(r.execute_async([xf], [yf]))
    np.testing.assert_array_equal(yf, y8.astype(np.float32) / 2 ** 3)


@pytest.mark.parametrize("bad, error", [
    (lambda: np.zeros((1, H, W, 3), np.uint8), ABORT),
    (lambda: np.zeros((1, H, W, 3), np.float64), ABORT),
    (lambda: np.zeros((1, H, W - 1, 3), np.int8), ABORT),
    (lambda: np.zeros((1, H, W, 6), np.int8)[..., ::2], ABORT),
    (lambda: np.frombuffer(bytes(H * W * 3), np.int8), ValueError),
    (lambda: bytes(H * W * 3), BufferError),
    (lambda: [0] * (H * W * 3), TypeError),
])
def test_bad_input_buffers_fail_loudly(dpu_double, tmp_path, onnx_model, bad, error):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model))
    with pytest.raises(dpu_double.vart.SimulatedAbort if error == ABORT else error):
        r.execute_async([bad()], [np.zeros((1, H // 2, W // 2, C), np.int8)])


def test_wrong_buffer_count_fails_loudly(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model))
    with pytest.raises(dpu_double.vart.SimulatedAbort):
        r.execute_async([frame(), frame()], [np.zeros((1, H // 2, W // 2, C), np.int8)])


def test_simulated_abort_escapes_except_exception(dpu_double):
    with pytest.raises(dpu_double.vart.SimulatedAbort):
        try:
            raise dpu_double.vart.SimulatedAbort("x")
        except Exception:  # noqa: BLE001 - the point: it must not be caught here
            pytest.fail("SimulatedAbort was caught as an Exception")


def test_concurrent_execute_async_on_one_runner_aborts(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model, latency_ms=400.0))
    errors = []

    def job():
        try:
            r.wait(r.execute_async([frame()], [np.zeros((1, H // 2, W // 2, C), np.int8)]))
        except BaseException as e:  # noqa: BLE001 - collect for the assertion
            errors.append(e)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and isinstance(errors[0], dpu_double.vart.SimulatedAbort)


def test_3x_requires_wait_between_jobs(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model))
    out = np.zeros((1, H // 2, W // 2, C), np.int8)
    r.execute_async([frame()], [out])
    with pytest.raises(RuntimeError, match="before wait"):
        r.execute_async([frame()], [out])


@pytest.mark.parametrize("api, good_wait, bad_wait", [
    ("3.x", lambda r, j: r.wait(j), lambda r, j: r.wait(j[0])),
    ("1.3", lambda r, j: r.wait(j), lambda r, j: r.wait(j[0], -1)),
    ("1.2", lambda r, j: r.wait(j[0], -1), lambda r, j: r.wait(j)),
])
def test_wait_forms_per_api_generation(dpu_double, tmp_path, onnx_model, api, good_wait, bad_wait):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model, api=api))
    out = np.zeros((1, H // 2, W // 2, C), np.int8)
    job = r.execute_async([frame()], [out])
    with pytest.raises(TypeError):
        bad_wait(r, job)
    assert good_wait(r, job) == 0


def test_enable_dynamic_array_exists_only_in_3x(dpu_double, tmp_path, onnx_model):
    out = np.zeros((1, H // 2, W // 2, C), np.int8)
    r3 = runner_for(dpu_double, xmodel(tmp_path, onnx_model, api="3.x"))
    r3.wait(r3.execute_async([frame()], [out], enable_dynamic_array=False))
    r13 = runner_for(dpu_double, xmodel(tmp_path, onnx_model, api="1.3"))
    with pytest.raises(TypeError):
        r13.execute_async([frame()], [out], enable_dynamic_array=False)


def test_runner_ext_buffers(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model), dpu_double.vart.RunnerExt)
    inputs, outputs = r.get_inputs(), r.get_outputs()
    np.asarray(inputs[0])[...] = frame(3)
    r.wait(r.execute_async(inputs, outputs))
    assert inputs[0].get_tensor().name == "image_fix"
    assert np.asarray(outputs[0]).shape == (1, H // 2, W // 2, C) and np.any(np.asarray(outputs[0]) != 0)


def test_runner_only_for_dpu_subgraphs_and_run_mode(dpu_double, tmp_path, onnx_model):
    g = dpu_double.xir.Graph.deserialize(str(xmodel(tmp_path, onnx_model, devices=("USER", "DPU", "CPU"))))
    user, dpu, cpu = g.get_root_subgraph().toposort_child_subgraph()
    for sg in (user, cpu):
        with pytest.raises(RuntimeError, match="cannot create runner"):
            dpu_double.vart.Runner.create_runner(sg, "run")
    with pytest.raises(RuntimeError, match="not available"):
        dpu_double.vart.Runner.create_runner(dpu, "ref")


def test_runners_come_only_from_create_runner(dpu_double, tmp_path, onnx_model):
    sg = dpu_subgraphs(dpu_double.xir.Graph.deserialize(str(xmodel(tmp_path, onnx_model))))[0]
    with pytest.raises(TypeError, match="No constructor defined"):
        dpu_double.vart.Runner(sg, "run")
    assert isinstance(dpu_double.vart.Runner.create_runner(subgraph=sg, mode="run"), dpu_double.vart.Runner)


def test_fingerprint_mismatch_is_refused(dpu_double, tmp_path, onnx_model):
    with pytest.raises(RuntimeError, match="fingerprint mismatch"):
        runner_for(dpu_double, xmodel(tmp_path, onnx_model, fingerprint=0x101000016010404))


def test_jobs_on_one_core_queue(dpu_double, tmp_path, onnx_model):
    g = dpu_double.xir.Graph.deserialize(str(xmodel(tmp_path, onnx_model, cores=1, latency_ms=150.0)))
    runners = [dpu_double.vart.Runner.create_runner(dpu_subgraphs(g)[0], "run") for _ in range(2)]
    start = time.monotonic()
    threads = [threading.Thread(target=lambda r=r: r.wait(r.execute_async(
        [frame()], [np.zeros((1, H // 2, W // 2, C), np.int8)]))) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 0.3  # two jobs, one core: the second waited for the first
    assert dpu_double.vart.device_of(runners[0]).stats()["jobs_per_core"] == [2]


def test_runners_bind_to_cores_round_robin(dpu_double, tmp_path, onnx_model):
    g = dpu_double.xir.Graph.deserialize(str(xmodel(tmp_path, onnx_model, cores=2)))
    runners = [dpu_double.vart.Runner.create_runner(dpu_subgraphs(g)[0], "run") for _ in range(3)]
    for r in runners:
        r.wait(r.execute_async([frame()], [np.zeros((1, H // 2, W // 2, C), np.int8)]))
    assert dpu_double.vart.device_of(runners[0]).stats()["jobs_per_core"] == [2, 1]


def test_replay_first_returns_the_first_output(dpu_double, tmp_path, onnx_model):
    r = runner_for(dpu_double, xmodel(tmp_path, onnx_model, outputs="replay-first"))
    first, second = (np.zeros((1, H // 2, W // 2, C), np.int8) for _ in range(2))
    r.wait(r.execute_async([frame(1)], [first]))
    r.wait(r.execute_async([frame(2)], [second]))
    np.testing.assert_array_equal(first, second)


def test_second_process_waits_for_the_dpu(dpu_double, tmp_path, onnx_model):
    path = xmodel(tmp_path, onnx_model)
    held = runner_for(dpu_double, path)
    code = ("import vart, xir; "
            f"g = xir.Graph.deserialize({str(path)!r}); "
            "sg = [c for c in g.get_root_subgraph().toposort_child_subgraph() if c.get_attr('device') == 'DPU'][0]; "
            "vart.Runner.create_runner(sg, 'run'); print('got the DPU', flush=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dpu_double.env())
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready, "the second process neither waited nor finished"
        assert "waiting for process to release the resource: DPU_0" in proc.stderr.readline()
        assert proc.poll() is None
        del held
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "got the DPU" in out
    finally:
        proc.kill()


def test_the_double_is_importable_only_inside_its_fixture():
    """No test module puts the double on sys.path at import: `import vart` fails here (no real
    Vitis AI runtime on a test machine), whatever ran before."""
    import importlib.util

    assert "vart" not in sys.modules and "xir" not in sys.modules
    assert importlib.util.find_spec("vart") is None and importlib.util.find_spec("xir") is None
