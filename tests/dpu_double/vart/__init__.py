"""Test double of the Vitis AI `vart` Python module (pybind11 `vart`) on a DPUCZDX8G edge board.

Same surface and failure behaviour as the real binding (reference/vitis-ai.md §2, checklist
§2.7): `Runner.create_runner(subgraph, mode)`, `get_input_tensors()`, `execute_async(inputs,
outputs)` that blocks until the job is done and returns `(1, 0)`, `wait(job) -> 0`;
`RunnerExt` with `get_inputs()/get_outputs()`. Where the real runtime aborts the process or
silently corrupts memory (unsupported dtype, short or strided buffer, re-entrant
`execute_async`), the double raises `SimulatedAbort`. The binding's API generation is chosen
by the xmodel's `dpu.api`: "3.x" (default), "1.3" (no `enable_dynamic_array`), "1.2"
(`wait(job_id, timeout)`).
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import xir

from ._compute import OnnxSubgraph, dequantize, float_to_xint8
from ._device import PROCESS_LOCK, Device, SimulatedAbort

__all__ = ["Runner", "RunnerExt", "TensorBuffer", "SimulatedAbort"]

_FORMATS = {"b": np.int8, "f": np.float32, "h": np.int16}
_devices: "weakref.WeakKeyDictionary[xir.Graph, Device]" = weakref.WeakKeyDictionary()
_devices_lock = threading.Lock()


def _device(graph: xir.Graph, config: dict) -> Device:
    with _devices_lock:
        if graph not in _devices:
            latency = config.get("latency_ms", [0.0])
            _devices[graph] = Device(int(config.get("cores", 1)),
                                     [float(v) for v in (latency if isinstance(latency, list) else [latency])],
                                     config.get("stats_file"))
        return _devices[graph]


def device_of(runner: "Runner") -> Device:
    """The simulated DPU a runner runs on (for benchmarks; not part of the real API)."""
    return runner._device


class TensorBuffer:
    """A host buffer for one tensor; `np.asarray(tb)` is a zero-copy view, as with the real one."""

    def __init__(self, tensor: xir.Tensor):
        self._tensor = tensor
        self._array = np.zeros(tensor.dims, dtype=np.int8)

    def get_tensor(self) -> xir.Tensor:
        return self._tensor

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)

    def __str__(self) -> str:
        return f"TensorBuffer{{@{id(self):#x},tensor={self._tensor},location=HOST_VIRT}}"

    __repr__ = __str__


def _flat_view(obj, tensor: xir.Tensor, what: str) -> np.ndarray:
    """What the binding's `py::buffer.request(true)` + CpuFlatTensorBuffer make of one argument."""
    if isinstance(obj, TensorBuffer):
        obj = obj._array
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"execute_async(): incompatible function arguments: {what} is a "
                        f"{type(obj).__name__}, not a buffer") from None
    if view.readonly:
        if isinstance(obj, np.ndarray):
            raise ValueError("buffer source array is read-only")
        raise BufferError("Object is not writable.")
    dtype = _FORMATS.get(view.format)
    if dtype is None:
        raise SimulatedAbort(f"Check failed: ret.type != xir::DataType::UNKNOWN unsupported data type "
                             f"({what} has buffer format {view.format!r}; the real runtime aborts)")
    if dtype is np.int16:
        raise SimulatedAbort(f"{what}: int16 buffer for a {tensor.dtype} tensor is not modelled by the double")
    if not view.c_contiguous:
        raise SimulatedAbort(f"{what} is not C-contiguous: the runtime ignores strides and would read "
                             "or write the wrong memory")
    needed = tensor.get_element_num()
    have = view.nbytes // view.itemsize
    if have < needed:
        raise SimulatedAbort(f"{what} has {have} elements, tensor {tensor.name} {tensor.dims} needs {needed}: "
                             "the runtime would read/write past its end")
    return np.ndarray((have,), dtype=dtype, buffer=view)


class Runner:
    """A DPU runner bound to one simulated core; not re-entrant, like DpuRunnerDdr."""

    def __init__(self, *args, **kwargs):
        raise TypeError("vart.Runner: No constructor defined! (use vart.Runner.create_runner)")

    @classmethod
    def _create(cls, subgraph: xir.Subgraph, mode: str) -> "Runner":
        runner = cls.__new__(cls)
        runner._setup(subgraph, mode)
        return runner

    def _setup(self, subgraph: xir.Subgraph, mode: str) -> None:
        if not isinstance(subgraph, xir.Subgraph):
            raise TypeError("create_runner(): incompatible function arguments: subgraph must be an xir.Subgraph")
        device = subgraph.get_attr("device") if subgraph.has_attr("device") else ""
        if device != "DPU":
            raise RuntimeError(f"cannot create runner for subgraph {subgraph.get_name()!r} with device "
                               f"{device!r}: only the DPU runner is built on the board")
        if mode not in ("", "run"):
            raise RuntimeError(f"runner mode {mode!r} is not available (board VART is built with only 'run')")
        spec = subgraph.double_spec
        config = spec.get("dpu", {})
        self._api = config.get("api", "3.x")
        if self._api not in ("3.x", "1.3", "1.2"):
            raise RuntimeError(f"dpu double: unknown api {self._api!r}")
        expected = subgraph.get_attr("dpu_fingerprint") if subgraph.has_attr("dpu_fingerprint") else None
        loaded = config.get("fingerprint", expected)
        if expected is not None and loaded != expected:
            raise RuntimeError(f"fingerprint mismatch: xmodel subgraph {subgraph.get_name()!r} was compiled for "
                               f"{expected:#x}, the loaded DPU is {loaded:#x}")
        batch = int(config.get("batch", 1))
        self._inputs = [t.with_batch(batch) for t in subgraph.sorted_input_tensors()]
        self._outputs = [t.with_batch(batch) for t in subgraph.sorted_output_tensors()]
        onnx = spec.get("onnx")
        if onnx is None:
            raise RuntimeError(f"dpu double: subgraph {subgraph.get_name()!r} names no ONNX model")
        graph_dir = subgraph.get_graph().path.parent
        self._model = OnnxSubgraph(
            (graph_dir / onnx["path"]).resolve(), onnx["inputs"], onnx["outputs"],
            {t.name: t.get_attr("fix_point") for t in self._inputs + self._outputs},
            replay_first=config.get("outputs", "compute") == "replay-first")
        self._device = _device(subgraph.get_graph(), config)
        PROCESS_LOCK.acquire()
        self._holds_lock = True
        self._core = self._device.next_core()
        self._busy = threading.Lock()
        self._unwaited = False

    @staticmethod
    def create_runner(subgraph: xir.Subgraph, mode: str = "") -> "Runner":
        return Runner._create(subgraph, mode)

    def get_input_tensors(self) -> list[xir.Tensor]:
        return list(self._inputs)

    def get_output_tensors(self) -> list[xir.Tensor]:
        return list(self._outputs)

    def execute_async(self, inputs, outputs, *args, **kwargs):
        dynamic = self._dynamic_array_flag(args, kwargs)
        if dynamic:
            raise RuntimeError("dpu double: enable_dynamic_array=True is not modelled")
        if not isinstance(inputs, (list, tuple)) or not isinstance(outputs, (list, tuple)):
            raise TypeError("execute_async(): incompatible function arguments: inputs and outputs must be lists")
        if len(inputs) != len(self._inputs) or len(outputs) != len(self._outputs):
            raise SimulatedAbort(f"execute_async got {len(inputs)} inputs / {len(outputs)} outputs, the runner has "
                                 f"{len(self._inputs)} / {len(self._outputs)}: the binding indexes past its tensors")
        in_views = [_flat_view(x, t, f"inputs[{i}]") for i, (x, t) in enumerate(zip(inputs, self._inputs))]
        out_views = [_flat_view(x, t, f"outputs[{i}]") for i, (x, t) in enumerate(zip(outputs, self._outputs))]
        if not self._busy.acquire(blocking=False):
            raise SimulatedAbort("execute_async re-entered on one runner from two threads "
                                 "(DpuRunnerDdr: UNI_LOG_CHECK(my_input_.empty()) aborts); use one runner per thread")
        try:
            if self._unwaited and self._api == "3.x":
                raise RuntimeError("execute_async called again before wait() on the previous job: the 3.x "
                                   "binding keeps every job's buffers until wait() and would leak them")
            if self._model.needs_priming():  # replay-first: the real output, computed before the job is timed
                self._compute(in_views, out_views)
            self._device.run(self._core, lambda: self._compute(in_views, out_views))
            self._unwaited = True
        finally:
            self._busy.release()
        return (1, 0)

    def _dynamic_array_flag(self, args: tuple, kwargs: dict) -> bool:
        if self._api != "3.x":
            if args or kwargs:
                raise TypeError("execute_async(): incompatible function arguments (this binding takes "
                                "only inputs and outputs)")
            return False
        if len(args) + len(kwargs) > 1 or set(kwargs) - {"enable_dynamic_array"}:
            raise TypeError("execute_async(): incompatible function arguments")
        return bool(args[0] if args else kwargs.get("enable_dynamic_array", False))

    def _compute(self, in_views: list[np.ndarray], out_views: list[np.ndarray]) -> None:
        batch = self._inputs[0].dims[0]
        for slot in range(batch):
            slot_inputs = {}
            for view, t in zip(in_views, self._inputs):
                n = t.get_element_num() // batch
                values = view[slot * n:(slot + 1) * n]
                if values.dtype == np.float32:
                    values = float_to_xint8(values, t.get_attr("fix_point"))
                slot_inputs[t.name] = values.reshape(t.dims[1:])
            results = self._model.run(slot_inputs)
            for view, t in zip(out_views, self._outputs):
                n = t.get_element_num() // batch
                values = results[t.name].reshape(-1)
                if view.dtype == np.float32:
                    values = dequantize(values, t.get_attr("fix_point"))
                view[slot * n:(slot + 1) * n] = values

    def wait(self, *job):
        if self._api == "1.2":
            if len(job) != 2 or not all(isinstance(v, int) for v in job):
                raise TypeError("wait(): incompatible function arguments: this binding takes (job_id: int, "
                                "timeout: int)")
        elif len(job) != 1 or not (isinstance(job[0], (tuple, list)) and len(job[0]) == 2
                                   and all(isinstance(v, int) for v in job[0])):
            raise TypeError("wait(): incompatible function arguments: this binding takes the "
                            "(job_id, status) pair returned by execute_async")
        self._unwaited = False
        return 0

    def __del__(self):
        if getattr(self, "_holds_lock", False):
            self._holds_lock = False
            PROCESS_LOCK.release()

    def __repr__(self) -> str:
        return f"vart::Runner@{id(self):#x}"


class RunnerExt(Runner):
    """Runner with host buffers allocated by the runtime (fresh ones per call, as in 3.x)."""

    @staticmethod
    def create_runner(subgraph: xir.Subgraph, mode: str = "") -> "RunnerExt":
        return RunnerExt._create(subgraph, mode)

    def get_inputs(self) -> list[TensorBuffer]:
        return [TensorBuffer(t) for t in self._inputs]

    def get_outputs(self) -> list[TensorBuffer]:
        return [TensorBuffer(t) for t in self._outputs]

