"""The RM's hypercall wrappers: the only way the RM changes anything.

Calls go through the hypervisor's SMCCC door with the RM's own capability
space, exactly as a guest's ``hvc #0`` would. A failing hypercall raises
:class:`HypercallFailed` with the Gunyah error; handlers that can explain
it to their caller turn it into an RM error.
"""

from __future__ import annotations

from hyp.gunyah.errors import Error
from hyp.gunyah.hypercalls import BY_NAME
from hyp.gunyah.smccc import hypercall_id


class HypercallFailed(Exception):
    def __init__(self, name: str, error: Error):
        super().__init__(f"{name}: {error.name}")
        self.name, self.error = name, error


class Hypercalls:
    """``hvc.name(*inputs)`` returns the outputs, or raises HypercallFailed."""

    def __init__(self, gunyah, caller):
        self._gunyah, self.caller = gunyah, caller

    def call(self, name: str, *args: int) -> list[int]:
        return self._call(name, hypercall_id(BY_NAME[name].num), args)

    def _call(self, name: str, fid: int, args: tuple[int, ...]) -> list[int]:
        out = self._gunyah.smccc(self.caller, [fid, *args, *_ZEROS[len(args) :]])
        if out[0] != 0:
            raw = out[0] - (1 << 64) if out[0] >> 63 else out[0]
            raise HypercallFailed(name, Error(raw))
        return out[1:]

    def __getattr__(self, name: str):
        """The wrapper of hypercall ``name``, made once (it is then an attribute)."""
        if name not in BY_NAME:
            raise AttributeError(name)
        fid = hypercall_id(BY_NAME[name].num)

        def wrapper(*args: int) -> list[int]:
            return self._call(name, fid, args)

        setattr(self, name, wrapper)
        return wrapper


_ZEROS = (0,) * 7  # X1..X7 beyond a call's inputs
