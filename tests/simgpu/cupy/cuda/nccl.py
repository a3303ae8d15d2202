"""Simulated NCCL (``cupy.cuda.nccl``) across real processes.

A communicator is made as with real NCCL: one rank calls ``get_unique_id()``, the id travels to the
others (over MPI), and every rank calls ``NcclCommunicator(ndev, uid, rank)`` with its GPU current.
The ranks then meet over loopback TCP (rank 0 is the hub) and collectives really move the bytes of
the device buffers named by their pointers.

Collectives issued on a capturing stream are recorded (see ``cupy._capture``): they communicate when
the graph is launched, in launch order, so a captured all-reduce replays across the ranks.

Strict where NCCL is unforgiving: every rank must call the same collectives in the same order with
the same count, type and root (a mismatch is an ``NcclError`` on every rank, where real NCCL would
hang or corrupt); a buffer must be a live allocation on the communicator's device. Unlike real
NCCL, a peer that never comes or dies is an ``NcclError`` after ``BENCHBENCH_SIM_NCCL_TIMEOUT``
seconds (default 120) rather than a hang.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import secrets
import socket
import struct
import tempfile
import time

import numpy

from .. import _capture, _state
from . import memory as _memory
from .runtime import CUDARuntimeError

NCCL_INT8 = NCCL_CHAR = 0
NCCL_UINT8 = 1
NCCL_INT32 = NCCL_INT = 2
NCCL_UINT32 = 3
NCCL_INT64 = 4
NCCL_UINT64 = 5
NCCL_FLOAT16 = NCCL_HALF = 6
NCCL_FLOAT32 = NCCL_FLOAT = 7
NCCL_FLOAT64 = NCCL_DOUBLE = 8
NCCL_SUM, NCCL_PROD, NCCL_MAX, NCCL_MIN, NCCL_AVG = 0, 1, 2, 3, 4

_DTYPES = {0: numpy.int8, 1: numpy.uint8, 2: numpy.int32, 3: numpy.uint32, 4: numpy.int64, 5: numpy.uint64,
           6: numpy.float16, 7: numpy.float32, 8: numpy.float64}
_OPS = {NCCL_SUM: "sum", NCCL_PROD: "prod", NCCL_MAX: "max", NCCL_MIN: "min", NCCL_AVG: "avg"}
_VERSION = 22800


class NcclError(RuntimeError):
    """NCCL's error (``status`` as ncclResult_t: 3 internal, 4 invalid argument, 5 invalid usage)."""

    def __init__(self, status, message=""):
        self.status = status
        super().__init__(f"NCCL_ERROR ({status}): {message}")


def get_version() -> int:
    return _VERSION


def get_build_version() -> int:
    return _VERSION


def get_unique_id() -> tuple:
    """A fresh id: 128 small integers, as cupy returns it."""
    return tuple(secrets.token_bytes(16)) + (0,) * 112


def _timeout() -> float:
    text = os.environ.get("BENCHBENCH_SIM_NCCL_TIMEOUT", "").strip()
    return float(text) if text else 120.0


def _send(sock, obj) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(struct.pack("!Q", len(payload)) + payload)


def _recv_exact(sock, n) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        buf += chunk
    return bytes(buf)


def _recv(sock):
    (n,) = struct.unpack("!Q", _recv_exact(sock, 8))
    return pickle.loads(_recv_exact(sock, n))


def _rendezvous_dir(uid) -> str:
    if not isinstance(uid, (tuple, list)) or len(uid) != 128:
        raise NcclError(4, "invalid unique id (expected the 128-integer tuple of get_unique_id())")
    token = bytes(int(v) & 0xFF for v in uid[:16]).hex()
    return os.path.join(tempfile.gettempdir(), f"benchbench-simnccl-{token}")


def _device_key(device: int) -> str:
    """A GPU as NCCL tells GPUs apart: its bus id on this host (a simulated node, ``BENCHBENCH_NODE``,
    is a host of its own)."""
    from .runtime import pci_bus_id

    host = os.environ.get("BENCHBENCH_NODE") or os.uname().nodename
    return f"{host}/{pci_bus_id(device)}"


def _refuse_duplicate_gpus(devices: dict) -> None:
    """NCCL refuses a communicator with two ranks on one GPU ("Duplicate GPU detected")."""
    seen: dict = {}
    for rank in sorted(devices):
        key = devices[rank] if rank else _device_key(devices[rank])
        if key in seen:
            raise NcclError(5, f"Duplicate GPU detected : rank {seen[key]} and rank {rank} both on CUDA device "
                               f"{key.split('/')[-1]}")
        seen[key] = rank


def _check_stream(stream, device: int, what: str) -> None:
    """A collective runs on a stream of the communicator's device (or the null stream)."""
    from . import stream_device

    try:
        dev = stream_device(int(stream))
    except CUDARuntimeError as e:
        raise NcclError(1, f"{what}: {e}") from None  # ncclUnhandledCudaError
    if dev is not None and dev != device:
        raise NcclError(1, f"{what}: a stream of GPU {dev} for the communicator of GPU {device} "
                           "(cudaErrorInvalidResourceHandle)")


class NcclCommunicator:
    """One rank of a simulated NCCL communicator, bound to the device current at creation."""

    def __init__(self, ndev: int, commId, rank: int):
        if not isinstance(ndev, int) or ndev < 1 or not isinstance(rank, int) or not 0 <= rank < ndev:
            raise NcclError(4, f"invalid ndev {ndev!r} or rank {rank!r}")
        self._ndev, self._rank = ndev, rank
        self._device = _state.check_device(_state.local.device)
        _state.contexts.add(self._device)
        self._seq = 0
        self._peers: dict[int, socket.socket] = {}
        self._hub: socket.socket | None = None
        self._closed = False
        if ndev > 1:
            self._connect(_rendezvous_dir(commId))

    # ---- set-up
    def _connect(self, folder: str) -> None:
        deadline = time.monotonic() + _timeout()
        if self._rank == 0:
            os.makedirs(folder, exist_ok=True)
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            srv.bind(("127.0.0.1", 0))
            srv.listen(self._ndev)
            port_file = os.path.join(folder, "port")
            with open(port_file + ".tmp", "w") as f:
                f.write(str(srv.getsockname()[1]))
            os.replace(port_file + ".tmp", port_file)
            devices = {0: self._device}
            try:
                while len(self._peers) < self._ndev - 1:
                    srv.settimeout(max(0.01, deadline - time.monotonic()))
                    try:
                        conn, _ = srv.accept()
                    except socket.timeout:
                        raise NcclError(5, f"communicator init: {len(self._peers) + 1} of {self._ndev} ranks "
                                           f"joined within {_timeout():.0f} s") from None
                    conn.settimeout(_timeout())
                    peer = _recv(conn)
                    if peer.get("ndev") != self._ndev or peer.get("rank") in self._peers or peer.get("rank") == 0:
                        raise NcclError(5, f"communicator init: inconsistent rank {peer}")
                    self._peers[peer["rank"]] = conn
                    devices[peer["rank"]] = peer.get("device")
                _refuse_duplicate_gpus(devices)
                for conn in self._peers.values():
                    _send(conn, {"ok": True})
            except NcclError as e:
                for conn in self._peers.values():
                    try:
                        _send(conn, {"ok": False, "error": str(e)})
                    except OSError:
                        pass
                raise
            finally:
                srv.close()
                for remove, target in ((os.unlink, port_file), (os.rmdir, folder)):
                    try:
                        remove(target)
                    except OSError:
                        pass
        else:
            port_file = os.path.join(folder, "port")
            while True:
                try:
                    with open(port_file) as f:
                        port = int(f.read())
                    break
                except (OSError, ValueError):
                    if time.monotonic() > deadline:
                        raise NcclError(5, f"communicator init: rank 0 did not appear within {_timeout():.0f} s")
                    time.sleep(0.01)
            sock = socket.create_connection(("127.0.0.1", port), timeout=_timeout())
            _send(sock, {"rank": self._rank, "ndev": self._ndev, "device": _device_key(self._device)})
            try:
                reply = _recv(sock)
            except (OSError, ConnectionError) as e:
                raise NcclError(3, f"communicator init failed: {e}") from None
            if not reply.get("ok"):
                raise NcclError(5, reply.get("error") or "communicator init failed")
            self._hub = sock

    # ---- the device buffers behind pointers
    def _buffer(self, ptr: int, count: int, datatype: int, what: str) -> numpy.ndarray:
        return self._block(ptr, count, datatype, what)[0]

    def _block(self, ptr: int, count: int, datatype: int, what: str):
        """The device buffer at ``ptr`` as a numpy view, and the block that holds it."""
        if datatype not in _DTYPES:
            raise NcclError(4, f"{what}: invalid datatype {datatype!r}")
        dtype = numpy.dtype(_DTYPES[datatype])
        nbytes = int(count) * dtype.itemsize
        mem = _memory.find_block(int(ptr), nbytes)
        if mem is None:
            raise NcclError(4, f"{what}: pointer {ptr:#x} (+{nbytes} bytes) is not a live device allocation "
                               "(a host buffer, a freed array, or a count past the end)")
        if mem.device_id != self._device:
            raise NcclError(4, f"{what}: the buffer is on GPU {mem.device_id}, the communicator on GPU {self._device}")
        raw = (ctypes.c_char * nbytes).from_address(int(ptr))
        return numpy.frombuffer(raw, dtype=dtype, count=int(count)), mem

    def _issue(self, what: str, stream, header: dict, send, recv) -> None:
        """Run one collective now, or record it into the capture of ``stream``: ``send`` and ``recv`` are
        (view, block) or None. A recorded collective communicates only when its graph is launched (on
        every rank, in launch order); during the capture each rank's own data stands in for the result."""
        s_view, r_view = (send[0] if send is not None else None), (recv[0] if recv is not None else None)
        keep = [b[1].host for b in (send, recv) if b is not None]  # the buffers behind the views

        def run(keep=keep):
            self._collective(header, s_view.copy() if s_view is not None else None, r_view)

        op = _capture.op(self._device, int(stream))
        if op is None or op.recording is None:
            if op is not None:
                op.refuse_legacy(what)
            run()
            return
        op.touch(*[b[1] for b in (send, recv) if b is not None])
        if send is not None and recv is not None:
            own = send[0] if header["op"] != "allGather" else numpy.tile(send[0], self._ndev)
            recv[0][...] = own[:recv[0].size]
        op.issued(f"nccl.{what}", run)

    def _collective(self, header: dict, send: numpy.ndarray | None, recv: numpy.ndarray | None):
        if self._closed:
            raise NcclError(5, "the communicator was destroyed or aborted")
        header = dict(header, seq=self._seq)
        self._seq += 1
        if self._ndev == 1:
            result = self._reduce(header, {0: send})
        elif self._rank == 0:
            contributions = {0: send}
            try:
                for r, conn in sorted(self._peers.items()):
                    h, data = _recv(conn)
                    if h != dict(header, rank=r):
                        raise NcclError(5, f"collective mismatch: rank 0 called {header}, rank {r} called {h}; "
                                           "every rank must call the same collectives in the same order")
                    contributions[r] = data
            except (OSError, ConnectionError, socket.timeout) as e:
                self._fail_all(f"a peer failed during {header['op']}: {e}")
                raise NcclError(3, f"{header['op']}: a peer rank failed or timed out ({e})") from None
            except NcclError as e:
                self._fail_all(str(e))
                raise
            result = self._reduce(header, contributions)
            for r, conn in self._peers.items():
                try:
                    _send(conn, ("ok", result if header["op"] != "reduce" or header["root"] == r else None))
                except OSError:
                    pass
            if header["op"] == "reduce" and header["root"] != 0:
                result = None
        else:
            try:
                _send(self._hub, (dict(header, rank=self._rank), send))
                status, result = _recv(self._hub)
            except (OSError, ConnectionError, socket.timeout) as e:
                raise NcclError(3, f"{header['op']}: the connection to rank 0 failed ({e})") from None
            if status != "ok":
                raise NcclError(5, result)
        if recv is not None and result is not None:
            recv[...] = result
        return result

    @staticmethod
    def _reduce(header, contributions):
        op = header["op"]
        parts = [contributions[r] for r in sorted(contributions)]
        if op == "bcast":
            return contributions[header["root"]]
        if op == "allGather":
            return numpy.concatenate(parts)
        name = _OPS[header["redop"]]
        if name in ("sum", "avg"):
            out = parts[0].copy()
            for p in parts[1:]:
                out += p
            if name == "avg":
                out = (out / len(parts)).astype(out.dtype)
        elif name == "prod":
            out = numpy.prod(numpy.stack(parts), axis=0).astype(parts[0].dtype)
        else:
            out = (numpy.max if name == "max" else numpy.min)(numpy.stack(parts), axis=0)
        return out

    def _fail_all(self, message):
        for conn in self._peers.values():
            try:
                _send(conn, ("error", message))
            except OSError:
                pass

    # ---- the collectives (device pointers, as cupy's binding takes them)
    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        _check_stream(stream, self._device, "allReduce")
        if op not in _OPS:
            raise NcclError(4, f"allReduce: invalid op {op!r}")
        send = self._block(sendbuf, count, datatype, "allReduce")
        recv = self._block(recvbuf, count, datatype, "allReduce")
        self._issue("allReduce", stream, {"op": "allReduce", "count": int(count), "dtype": datatype, "redop": op,
                                          "root": None}, send, recv)

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        _check_stream(stream, self._device, "reduce")
        send = self._block(sendbuf, count, datatype, "reduce")
        recv = self._block(recvbuf, count, datatype, "reduce") if self._rank == root else None
        self._issue("reduce", stream, {"op": "reduce", "count": int(count), "dtype": datatype, "redop": op,
                                       "root": int(root)}, send, recv)

    def bcast(self, buff, count, datatype, root, stream):
        _check_stream(stream, self._device, "bcast")
        buf = self._block(buff, count, datatype, "bcast")
        self._issue("bcast", stream, {"op": "bcast", "count": int(count), "dtype": datatype, "redop": None,
                                      "root": int(root)}, buf if self._rank == root else None, buf)

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        _check_stream(stream, self._device, "broadcast")
        send = self._block(sendbuff, count, datatype, "broadcast") if self._rank == root else None
        recv = self._block(recvbuff, count, datatype, "broadcast")
        self._issue("broadcast", stream, {"op": "bcast", "count": int(count), "dtype": datatype, "redop": None,
                                          "root": int(root)}, send, recv)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        _check_stream(stream, self._device, "allGather")
        send = self._block(sendbuf, count, datatype, "allGather")
        recv = self._block(recvbuf, count * self._ndev, datatype, "allGather")
        self._issue("allGather", stream, {"op": "allGather", "count": int(count), "dtype": datatype, "redop": None,
                                          "root": None}, send, recv)

    # ---- identity and life
    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._ndev

    def device_id(self) -> int:
        return self._device

    def _close(self):
        self._closed = True
        for s in list(self._peers.values()) + ([self._hub] if self._hub is not None else []):
            try:
                s.close()
            except OSError:
                pass
        self._peers, self._hub = {}, None

    def destroy(self):
        self._close()

    def abort(self):
        self._close()

    def __del__(self):
        try:
            self._close()
        except Exception:
            pass


def groupStart():
    return None


def groupEnd():
    return None
