"""Reference counts (include/linux/kref.h): an object lives while it is referenced,
and the put that drops the last reference releases it."""

from __future__ import annotations

import threading


class Kref:
    """One reference at creation; ``release()`` runs, outside the lock, on the last put."""

    def __init__(self, release):
        self._release = release
        self._refs = 1  # _lock
        self._lock = threading.Lock()

    def get(self) -> None:
        with self._lock:
            self._refs += 1

    def get_unless_zero(self) -> bool:
        """A reference, unless the last one is already gone (kref_get_unless_zero)."""
        with self._lock:
            if self._refs == 0:
                return False
            self._refs += 1
            return True

    def put(self) -> None:
        with self._lock:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self._release()
