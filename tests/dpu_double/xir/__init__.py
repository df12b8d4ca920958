"""Test double of the Vitis AI `xir` Python module (pybind11 `xir`), read-only subset.

Mirrors the classes, properties and methods the daemon and the Xilinx samples use
(Graph.deserialize, Subgraph.toposort_child_subgraph, Tensor.dims/ndim/dtype/get_attr ...),
see ../../../docs/dpu.md and /work/shared/reference/vitis-ai.md §1. The ".xmodel" it reads is
the JSON format written by `dpu_double_xmodel.write_xmodel`, not the protobuf of a real xmodel.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

FORMAT = "dpu-double-xmodel"
_BIT_WIDTH = {"xint8": 8, "xint16": 16, "int8": 8, "int32": 32, "float32": 32}


class _Attrs:
    """has_attr/get_attr/get_attrs like the binding; a missing attribute is an error, as in C++."""

    _attrs: dict

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def get_attr(self, name: str) -> Any:
        if name not in self._attrs:
            raise RuntimeError(f"[XIR_UNREGISTERED_ATTR] Attrs doesn't contain attribute {name}")
        return self._attrs[name]

    def get_attrs(self) -> dict:
        return dict(self._attrs)

    def set_attr(self, name: str, value: Any):
        self._attrs[name] = value
        return self


class Tensor(_Attrs):
    def __init__(self, name: str, dims: list[int], dtype: str, attrs: dict | None = None):
        if dtype not in _BIT_WIDTH:
            raise RuntimeError(f"unsupported data type {dtype!r}")
        self._name = name
        self._dims = [int(d) for d in dims]
        self._dtype = dtype
        self._attrs = dict(attrs or {})

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def dims(self) -> list[int]:
        return list(self._dims)

    @property
    def ndim(self) -> int:
        return len(self._dims)

    @property
    def dtype(self) -> str:
        return self._dtype

    def get_element_num(self) -> int:
        return math.prod(self._dims)

    def get_data_size(self) -> int:
        return self.get_element_num() * _BIT_WIDTH[self._dtype] // 8

    def with_batch(self, batch: int) -> "Tensor":
        """Copy with dims[0] replaced: what the runner reports (the batch is the DPU's, not the model's)."""
        return Tensor(self._name, [batch, *self._dims[1:]], self._dtype, self._attrs)

    def __repr__(self) -> str:
        return f"<xir.Tensor named '{self._name}'>"

    def __str__(self) -> str:
        return f"{{name: '{self._name}', shape: {self._dims}, type: '{self._dtype}', attrs: {self._attrs}}}"


class Subgraph(_Attrs):
    def __init__(self, name: str, attrs: dict, graph: "Graph", parent: "Subgraph | None" = None,
                 inputs: list[Tensor] = (), outputs: list[Tensor] = (), spec: dict | None = None):
        self._name = name
        self._attrs = dict(attrs)
        self._graph = graph
        self._parent = parent
        self._children: list[Subgraph] = []
        self._inputs = list(inputs)
        self._outputs = list(outputs)
        self.double_spec = spec or {}  # what the vart double needs to run it (not in the real API)

    def get_name(self) -> str:
        return self._name

    @property
    def is_root(self) -> bool:
        return self._parent is None

    @property
    def is_leaf(self) -> bool:
        return not self._children

    @property
    def root(self) -> "Subgraph":
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    @property
    def depth(self) -> int:
        return 0 if self._parent is None else self._parent.depth + 1

    def get_parent(self) -> "Subgraph | None":
        return self._parent

    def get_children(self) -> set:
        return set(self._children)

    def get_children_num(self) -> int:
        return len(self._children)

    def toposort_child_subgraph(self) -> list["Subgraph"]:
        return list(self._children)

    def get_input_tensors(self) -> set:
        return set(self._inputs)

    def get_output_tensors(self) -> set:
        return set(self._outputs)

    def get_graph(self) -> "Graph":
        return self._graph

    def sorted_input_tensors(self) -> list[Tensor]:
        """Runner order (C++ get_sorted_input_tensors; not exposed to Python by the real binding)."""
        return list(self._inputs)

    def sorted_output_tensors(self) -> list[Tensor]:
        return list(self._outputs)

    def __repr__(self) -> str:
        return f"<xir.Subgraph named '{self._name}'>"

    def __str__(self) -> str:
        return f"{{name: '{self._name}', op_num: 0, attrs: {self._attrs}}}"


class Graph(_Attrs):
    def __init__(self, name: str):
        self._name = name
        self._attrs: dict = {}
        self._tensors: dict[str, Tensor] = {}
        self._root = Subgraph("root", {}, self)
        self.path: Path | None = None

    @staticmethod
    def deserialize(fname: str) -> "Graph":
        path = Path(fname)
        try:
            raw = json.loads(path.read_text())
        except OSError as e:
            raise RuntimeError(f"[XIR_FILE_NOT_EXIST] cannot open {fname}: {e.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RuntimeError(f"[XIR_FILE_FORMAT_ERROR] {fname} is not an xmodel") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise RuntimeError(f"[XIR_FILE_FORMAT_ERROR] {fname} is not an xmodel")
        graph = Graph(raw["name"])
        graph.path = path.resolve()
        graph._attrs = dict(raw.get("attrs", {}))
        graph._tensors = {n: Tensor(n, t["dims"], t["dtype"], t.get("attrs"))
                          for n, t in raw["tensors"].items()}
        for sg in raw["subgraphs"]:
            child = Subgraph(sg["name"], {"device": sg["device"], **sg.get("attrs", {})}, graph,
                             parent=graph._root,
                             inputs=[graph._tensors[n] for n in sg.get("inputs", [])],
                             outputs=[graph._tensors[n] for n in sg.get("outputs", [])],
                             spec={"onnx": sg.get("onnx"), "dpu": raw.get("dpu", {})})
            graph._root._children.append(child)
        return graph

    def get_name(self) -> str:
        return self._name

    def get_root_subgraph(self) -> Subgraph:
        return self._root

    def get_tensors(self) -> list[Tensor]:
        return list(self._tensors.values())

    def get_tensor(self, name: str) -> Tensor | None:
        return self._tensors.get(name)

    def __repr__(self) -> str:
        return f"<xir.Graph named '{self._name}'>"
