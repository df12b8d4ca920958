"""The DPU encoder backend: a compiled .xmodel run through Vitis AI's VART Python API.

One `vart.Runner` per worker thread (a runner is not re-entrant; VART binds each new runner
to the next DPU core, so 2 x cores workers keep every core fed with one job queued). On
DPUCZDX8G `execute_async` returns when the job is done, with the GIL released while the DPU
works. Buffers are int8 of the runner tensors' dims (batch = dims[0], slot 0 used) and are
checked before every call, because a wrong buffer aborts the process instead of raising.
Written against VAI 1.3-3.5; docs/dpu.md lists the version differences handled.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..fixed_point import padded_size
from .base import EncoderBackend, EncoderError, TensorInfo

log = logging.getLogger(__name__)
LOCK_WARNING_S = 5.0  # runner creation blocks while another process holds the DPU; warn after this


@dataclasses.dataclass
class _Slot:
    """A runner, its tensors' dims, and a staging input buffer for batch > 1 or read-only frames."""

    runner: Any
    input_dims: tuple[int, ...]
    output_dims: tuple[int, ...]
    staging: np.ndarray


def _import_runtime():
    try:
        import vart
        import xir
    except ImportError as e:
        raise EncoderError(
            f"the vart backend needs the Vitis AI runtime's Python modules 'vart' and 'xir' "
            f"(packages vart and xir on the board image): {e}") from None
    return vart, xir


def dpu_subgraph(graph, path: Path):
    """The one child subgraph whose device is DPU (the selection every Xilinx sample makes)."""
    root = graph.get_root_subgraph()
    children = [] if root.is_leaf else root.toposort_child_subgraph()
    dpu = [c for c in children if c.has_attr("device") and str(c.get_attr("device")).upper() == "DPU"]
    if not dpu:
        devices = ", ".join(f"{c.get_name()}={c.get_attr('device') if c.has_attr('device') else '?'}"
                            for c in children) or "none (graph not partitioned)"
        raise EncoderError(f"{path}: no DPU subgraph (subgraphs: {devices}); is it compiled with vai_c_xir?")
    if len(dpu) > 1:
        names = ", ".join(c.get_name() for c in dpu)
        raise EncoderError(
            f"{path}: {len(dpu)} DPU subgraphs ({names}): ops the DPU cannot run split the model; "
            f"see the vai_c_xir report and keep unsupported ops out of the encoder")
    return dpu[0]


def _fix_point(tensor, path: Path) -> int:
    if not tensor.has_attr("fix_point"):
        raise EncoderError(f"{path}: tensor {tensor.name} has no fix_point attribute (not a DPU tensor?)")
    return int(tensor.get_attr("fix_point"))


def _nhwc_int8(tensor, path: Path, role: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in tensor.dims)
    if len(dims) != 4 or tensor.dtype != "xint8":
        raise EncoderError(f"{path}: {role} tensor {tensor.name} is {tensor.dtype} {list(dims)}, "
                           f"expected xint8 NHWC [batch, H, W, C]")
    return dims


def _tensor_info(tensor, path: Path, role: str) -> TensorInfo:
    dims = _nhwc_int8(tensor, path, role)
    return TensorInfo(name=tensor.name, shape=dims[1:], fix_point=_fix_point(tensor, path))


def _manifest(path: Path, graph, input_info: TensorInfo,
              latent_info: TensorInfo) -> tuple[str, int, str, int, int | None]:
    """(model id, latent scale log2, input colour order, size multiple, coarsest fix point its
    decoder learnt or None) from the model.json shipped beside the xmodel; without one, the graph
    (net) name, 0, RGB, 8 and None.

    The manifest must describe this xmodel's tensors: the host picks its decoder by that id. A
    rate of a multi-rate model is compiled with its latents divided by 2**k
    (`dpu_latent_scale_log2`, see caed_models.vitis_build), so its wire fix point is the xmodel's
    output fix point minus k.
    """
    manifest = path.parent / "model.json"
    if not manifest.is_file():
        return graph.get_name(), 0, "rgb", 8, None
    from caed.manifest import ModelSpec

    try:
        spec = ModelSpec.load(manifest)
        shift = spec.manifest.get("dpu_latent_scale_log2", 0)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EncoderError(f"{manifest}: unreadable model manifest: {e}") from None
    if (spec.input_shape, spec.latent_shape) != (input_info.shape, latent_info.shape):
        raise EncoderError(f"{manifest} describes input {spec.input_shape} / latents {spec.latent_shape}, but "
                           f"{path.name} has {input_info.shape} / {latent_info.shape}: not the same model")
    if type(shift) is not int or not 0 <= shift <= 16:
        raise EncoderError(f"{manifest}: dpu_latent_scale_log2 = {shift!r} is not an integer in [0, 16]")
    return spec.model_id, shift, spec.input_colours, spec.size_multiple, spec.manifest.get("coarsest_fix_point")


def wait_job(runner, job) -> int:
    """Wait for `job` in whichever form this VART generation takes it.

    VAI >= 1.3: `wait((job_id, status))`; the earliest xmodel binding: `wait(job_id, timeout)`;
    an int job id (VAI 1.1-style runners) is passed through.
    """
    if isinstance(job, int):
        return runner.wait(job)
    try:
        return runner.wait(job)
    except TypeError:
        return runner.wait(job[0], -1)


class VartEncoder(EncoderBackend):
    """Encoder on the DPU: `workers` VART runners over the model's single DPU subgraph."""

    name = "vart"

    def __init__(self, xmodel_path: str | Path, workers: int, picture: tuple[int, int] | None = None,
                 dpu_wait_s: float | None = None):
        """`picture` (H, W): the pictures the daemon will stream, which the xmodel's one input size
        must hold (padded to the model's size multiple); by default that input size.
        `dpu_wait_s`: how long to wait for a DPU another process holds before giving up with an
        EncoderError (for `caed --check`); None waits as long as it takes, with a warning (the service)."""
        path = Path(xmodel_path)
        if not path.is_file():
            raise EncoderError(f"xmodel not found: {path}")
        self._vart, xir = _import_runtime()
        try:
            graph = xir.Graph.deserialize(str(path))
        except RuntimeError as e:  # the binding raises for unreadable files
            raise EncoderError(f"{path}: cannot load xmodel: {e}") from None
        self.path = path
        self._dpu_wait_s = dpu_wait_s
        self._subgraph = dpu_subgraph(graph, path)
        self._first = self._create_runner()
        try:
            input_info, latent_info = self._check_tensors()
            model_id, shift, colours, multiple, coarsest = _manifest(path, graph, input_info, latent_info)
            if picture is not None:
                self._check_picture(picture, input_info, multiple)
            latent_info = dataclasses.replace(latent_info, fix_point=latent_info.fix_point - shift)
            super().__init__(model_id, input_info, latent_info, workers, colours, picture, coarsest)
        except BaseException:
            self._first = None  # drop the runner now: it holds the DPU
            raise

    def _check_picture(self, picture: tuple[int, int], input_info: TensorInfo, multiple: int) -> None:
        """An xmodel has one input size: the picture must fill it but for less than a size
        multiple of padding at the bottom and right."""
        h, w, _ = input_info.shape
        if not (h - multiple < picture[0] <= h and w - multiple < picture[1] <= w):
            needed = padded_size(*picture, multiple)
            raise EncoderError(
                f"{self.path} takes {h}x{w} pictures (an xmodel has one input size) but the source gives "
                f"{picture[0]}x{picture[1]} (HxW): build an xmodel for it (python -m caed_models.vitis_build "
                f"--input {needed[0]}x{needed[1]} ...), or set resolution = fit to scale and crop to {h}x{w}")

    def _check_tensors(self) -> tuple[TensorInfo, TensorInfo]:
        runner = self._first.runner
        input_info = _tensor_info(runner.get_input_tensors()[0], self.path, "input")
        latent_info = _tensor_info(runner.get_output_tensors()[0], self.path, "output")
        self._batch = int(runner.get_input_tensors()[0].dims[0])
        self._attrs = {k: self._subgraph.get_attr(k) for k in ("dpu_name", "dpu_fingerprint")
                       if self._subgraph.has_attr(k)}
        return input_info, latent_info

    def _open_runner(self):
        """vart.Runner.create_runner, which blocks while another process holds the DPU (VART's
        per-device lock): warn after a few seconds, or give up after `dpu_wait_s`."""
        outcome: dict = {}

        def create():
            try:
                outcome["runner"] = self._vart.Runner.create_runner(self._subgraph, "run")
            except BaseException as e:  # noqa: BLE001 - handed to the constructing thread
                outcome["error"] = e

        opener = threading.Thread(target=create, name="dpu-open", daemon=True)
        opener.start()
        opener.join(self._dpu_wait_s if self._dpu_wait_s is not None else LOCK_WARNING_S)
        if opener.is_alive():
            if self._dpu_wait_s is not None:
                raise EncoderError(f"the DPU is held by another process (is caed.service running?); "
                                   f"gave up after {self._dpu_wait_s:g} s")
            log.warning("waiting for the DPU: another process holds it (is caed.service running?)")
            opener.join()
        if "error" in outcome:
            error = outcome["error"]
            if isinstance(error, RuntimeError):
                raise EncoderError(f"{self.path}: cannot create a DPU runner: {error}") from None
            raise error
        return outcome["runner"]

    def _create_runner(self) -> _Slot:
        runner = self._open_runner()
        inputs, outputs = runner.get_input_tensors(), runner.get_output_tensors()
        if len(inputs) != 1 or len(outputs) != 1:
            raise EncoderError(f"{self.path}: the DPU subgraph has {len(inputs)} inputs and {len(outputs)} outputs, "
                               f"an encoder has one of each")
        in_dims = _nhwc_int8(inputs[0], self.path, "input")
        out_dims = _nhwc_int8(outputs[0], self.path, "output")
        return _Slot(runner, in_dims, out_dims, np.zeros(in_dims, dtype=np.int8))

    def _make_runner(self) -> _Slot:
        if self._first is not None:
            slot, self._first = self._first, None
            return slot
        return self._create_runner()

    def _run(self, slot: _Slot, frame: np.ndarray) -> np.ndarray:
        """One DPU job. With batch 1 the frame itself is the input buffer (same bytes as [1, H, W, C]),
        and the output is written straight into a fresh array: no copies on the A53 beyond VART's own.
        (`submit` has checked the frame's dtype, shape and layout.)"""
        if slot.input_dims[0] == 1 and frame.flags.writeable:  # the binding requests writable buffers
            inputs = frame.reshape(slot.input_dims)
        else:
            slot.staging[0] = frame
            inputs = slot.staging
        outputs = np.empty(slot.output_dims, dtype=np.int8)
        job = slot.runner.execute_async([inputs], [outputs])
        if isinstance(job, tuple) and job[1] != 0:
            raise EncoderError(f"DPU job failed to start: execute_async returned status {job[1]}")
        status = wait_job(slot.runner, job)
        if status != 0:
            raise EncoderError(f"DPU job failed: wait returned status {status}")
        return outputs[0]

    def describe(self) -> dict:
        info = super().describe()
        info["xmodel"] = str(self.path)
        info["subgraph"] = self._subgraph.get_name()
        info["batch"] = self._batch
        if "dpu_name" in self._attrs:
            info["dpu_target"] = self._attrs["dpu_name"]
        if "dpu_fingerprint" in self._attrs:
            info["dpu_fingerprint"] = f"{int(self._attrs['dpu_fingerprint']):#018x}"
        return info

    def _release_runner(self, slot: _Slot) -> None:
        slot.runner = None  # VART frees the runner (and, with the last one, the DPU) on destruction
