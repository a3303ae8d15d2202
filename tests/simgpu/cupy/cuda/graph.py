"""Simulated ``cupy.cuda.graph``: the CUDA graph a stream capture makes (see ``cupy._capture``)."""
from __future__ import annotations

import weakref

from .. import _capture, _launches, _state


class GraphMemoryError(RuntimeError):
    """Simulator only: memory that a live graph refers to was handed to another allocation, released,
    or (an input of the graph) freed. Real CUDA does not check this: its graph would silently read or
    overwrite memory that is no longer its own."""


class Graph:
    """The CUDA graph object (cupy's API): made by ``Stream.end_capture()``, replayed by ``launch``."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("currently this class cannot be initiated by the user and must be created via "
                                  "stream capture")

    @staticmethod
    def _from_capture(capture) -> Graph:
        g = Graph.__new__(Graph)
        g._capture = capture  # its body; memory it touched is the graph's while the graph lives
        capture.graph = weakref.ref(g)
        return g

    def _stream(self, stream):
        from . import get_current_stream

        s = get_current_stream() if stream is None else stream
        dev = s.device_id if s.device_id is not None else _state.local.device
        if dev != self._capture.device:
            from .runtime import CUDARuntimeError

            raise CUDARuntimeError(400, f"cudaErrorInvalidResourceHandle: a graph of GPU {self._capture.device} "
                                        f"launched on a stream of GPU {dev}")
        return s

    def _check_memory(self) -> None:
        c = self._capture
        if c.freed_inputs:
            raise GraphMemoryError(f"simulated GPUs: the graph reads memory freed since its capture "
                                   f"({'; '.join(c.freed_inputs[:3])}); keep its input buffers alive while it lives")
        if c.released:
            raise GraphMemoryError(f"simulated GPUs: memory of this graph was released ({c.released[0]}); on a real "
                                   "GPU its launch reads or writes memory it no longer owns (cudaErrorIllegalAddress "
                                   "at best)")

    def launch(self, stream=None) -> None:
        """Launch the graph on ``stream`` (the current stream by default): its recorded operations run
        in order, into the buffers they were captured on. One graph launch is counted."""
        s = self._stream(stream)
        self._check_memory()
        c = self._capture
        op = _capture.Op(c.device, s)
        if op.issued("cudaGraphLaunch", self._replay, c.kernels):
            return  # launched into a capture: a child graph node
        self._replay()
        _launches.graph_launch(c.device, c.kernels)

    def _replay(self) -> None:
        self._check_memory()
        for _name, replay in self._capture.nodes:
            replay()

    def upload(self, stream=None) -> None:
        """Upload the graph (``cudaGraphUpload``): nothing to do here but check the stream."""
        self._stream(stream)

    def debug_dot_str(self, flags=0) -> str:
        """A DOT description of the graph: its nodes in order."""
        lines = ["digraph simulated_cuda_graph {"]
        for i, (name, _) in enumerate(self._capture.nodes):
            lines.append(f'  n{i} [label="{name}"];')
            if i:
                lines.append(f"  n{i - 1} -> n{i};")
        return "\n".join(lines + ["}"]) + "\n"

    def __repr__(self):
        return f"<simulated CUDA graph on GPU {self._capture.device}, {len(self._capture.nodes)} nodes>"
