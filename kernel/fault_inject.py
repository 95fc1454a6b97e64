"""Error injection (the kernel's ALLOW_ERROR_INJECTION and fail_function).

A function marked with :func:`allow_error_injection` is a named injection
point. Its object's ``faults`` map names to the value to return instead of
calling it: an errno for RM calls, a Gunyah error for hypercalls.
``POINTS`` lists every point, so tests can walk them all.
"""

from __future__ import annotations

import functools

POINTS: set[str] = set()


def allow_error_injection(fn):
    POINTS.add(fn.__name__)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        fault = self.faults.get(fn.__name__)
        if fault is not None:
            return self.inject(fn.__name__, fault) if hasattr(self, "inject") else fault
        return fn(self, *args, **kwargs)

    return wrapper
