"""Error injection (the kernel's ALLOW_ERROR_INJECTION and fail_function).

A function marked with :func:`allow_error_injection` is a named injection
point. Its object's ``faults`` map names to the value to return instead of
calling it: an errno for RM calls, a Gunyah error for hypercalls. The map
may be a plain dict or a :class:`FaultPlan`, which fails one point on one
of its calls and records every point reached. ``POINTS`` lists every
point, so tests can walk them all.
"""

from __future__ import annotations

import collections
import functools
import threading

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


class FaultPlan:
    """Fail ``point`` on its ``nth`` call with ``value``; count the calls of every point.

    ``value`` may be a callable of the point's name (an errno for RM calls,
    a Gunyah error for hypercalls: one plan serves both spaces).
    """

    def __init__(self, point: str | None = None, value=None, nth: int = 1):
        self.point, self.value, self.nth = point, value, nth
        self.calls: collections.Counter[str] = collections.Counter()
        self.fired = False
        self._lock = threading.Lock()

    def get(self, name: str):
        with self._lock:
            self.calls[name] += 1
            if name != self.point or self.calls[name] != self.nth:
                return None
            self.fired = True
        return self.value(name) if callable(self.value) else self.value
