"""The preload library (preload.c): its wire format, and building it with the bundled zig.

Every message is one SOCK_SEQPACKET datagram. A program thread sends a
request (``REQUEST``: op, seq, six int64 arguments, then the data of a
write) on its own channel and gets replies (``REPLY``: ret, errno, kind,
four int64 values, then the data of a read, maybe one descriptor by
SCM_RIGHTS): any number of ``REPLY_MAPFIX`` (map a memfd over its own
memory) and ``REPLY_REVOKE`` (map zeroed private pages over lent adopted
memory), each answered by ``OP_ACK``, then one ``REPLY_DONE``.
``OP_LOOKUP`` (st_dev, st_ino of a socket the program holds) answers our
name of the model file behind it, or ENOENT. The control
socket carries ``CTL`` messages: a new thread's channel (``CTL_HELLO``,
with the descriptor) and a signal that interrupted a request
(``CTL_INTR``).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from importlib import resources
from pathlib import Path

from uapi import toolchain

(OP_OPEN, OP_IOCTL, OP_MMAP, OP_MUNMAP, OP_CLOSE, OP_READ, OP_WRITE, OP_POLL, OP_ACK) = range(1, 10)
OP_FALLOCATE, OP_LOOKUP = 10, 11
CTL_HELLO, CTL_INTR = 1, 2
REPLY_DONE, REPLY_MAPFIX, REPLY_REVOKE = 0, 1, 2
REQUEST = struct.Struct("=II6q")
REPLY = struct.Struct("=qiI4q")
CTL = struct.Struct("=IIqqq")
DATA_MAX = 65536  # bytes one read or write of a model fd carries

# environment of the program: the control socket, the device path, our pid
ENV_CTL, ENV_DEVICE, ENV_SERVER = "GUNYAH_SIM_CTL", "GUNYAH_SIM_DEVICE", "GUNYAH_SIM_SERVER"


def source() -> bytes:
    return resources.files("vmm.native").joinpath("preload.c").read_bytes()


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/gunyah-sim (default ~/.cache/gunyah-sim)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gunyah-sim"


def library() -> Path:
    """The preload library for this machine, built once per source and kept in
    :func:`cache_dir`. ToolchainError (one line) if zig is missing or fails."""
    machine = os.uname().machine
    text = source()
    digest = hashlib.sha256(text + machine.encode()).hexdigest()[:16]
    path = cache_dir() / f"preload-{machine}-{digest}.so"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        (Path(tmp) / "preload.c").write_bytes(text)
        cc = toolchain.cc(f"{machine}-linux-gnu")
        toolchain.run([*cc, "-shared", "-fPIC", "-O2", "-o", "preload.so", "preload.c"], tmp)
        os.replace(Path(tmp) / "preload.so", path)  # atomic: a racing build is as good
    return path
