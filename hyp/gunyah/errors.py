"""Gunyah error codes (hyp/interfaces/error): the first of the three error spaces.

Inside hyp a failure raises :class:`HypError`; the hypercall dispatcher turns
it into the X0 value a caller sees, once, at the boundary.
"""

from __future__ import annotations

from enum import IntEnum


class Error(IntEnum):
    OK = 0
    UNIMPLEMENTED = -1
    RETRY = -2
    ARGUMENT_INVALID = 1
    ARGUMENT_SIZE = 2
    ARGUMENT_ALIGNMENT = 3
    NOMEM = 10
    NORESOURCES = 11
    ADDR_OVERFLOW = 20
    ADDR_UNDERFLOW = 21
    ADDR_INVALID = 22
    DENIED = 30
    BUSY = 31
    IDLE = 32
    OBJECT_STATE = 33
    OBJECT_CONFIG = 34
    OBJECT_CONFIGURED = 35
    FAILURE = 36
    VIRQ_BOUND = 40
    VIRQ_NOT_BOUND = 41
    CSPACE_CAP_NULL = 50
    CSPACE_CAP_REVOKED = 51
    CSPACE_WRONG_OBJECT_TYPE = 52
    CSPACE_INSUFFICIENT_RIGHTS = 53
    CSPACE_FULL = 54
    MSGQUEUE_EMPTY = 60
    MSGQUEUE_FULL = 61
    MEMDB_NOT_OWNER = 111
    MEMEXTENT_MAPPINGS_FULL = 120
    MEMEXTENT_TYPE = 121
    EXISTING_MAPPING = 200


class HypError(Exception):
    """A hypercall failing with a Gunyah error code."""

    def __init__(self, error: Error, why: str = ""):
        super().__init__(f"{error.name}{': ' + why if why else ''}")
        self.error = error


def check(condition: bool, error: Error, why: str = "") -> None:
    """Raise HypError(error) unless ``condition``."""
    if not condition:
        raise HypError(error, why)
