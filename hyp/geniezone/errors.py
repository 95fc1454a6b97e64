"""GenieZone status codes (the values ``gzvm_err_to_errno()`` of the Linux driver
converts; spec §2): the EL2's own error space.

Inside ``hyp/geniezone`` a failure raises :class:`GzError`; the door turns it
into the signed X0 the host sees, once. The driver maps them to errno.
"""

from __future__ import annotations

from enum import IntEnum


class Error(IntEnum):
    NO_ERROR = 0
    ERR_NO_MEMORY = -5
    ERR_INVALID_ARGS = -8
    ERR_NOT_SUPPORTED = -24
    ERR_NOT_IMPLEMENTED = -27
    ERR_BUSY = -33
    ERR_FAULT = -40


class GzError(Exception):
    """A call failing with a GenieZone status."""

    def __init__(self, error: Error, why: str = ""):
        super().__init__(f"{error.name}{': ' + why if why else ''}")
        self.error = error


def check(condition: bool, error: Error = Error.ERR_INVALID_ARGS, why: str = "") -> None:
    """Raise GzError(error) unless ``condition``."""
    if not condition:
        raise GzError(error, why)
