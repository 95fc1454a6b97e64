"""The properties a campaign checks, one definition for the Hypothesis machines
(vmm/fuzz/gunyah.py, vmm/fuzz/gzvm.py, the CI tests) and the reproducers they write.

- An ioctl fails only with OSError, with an errno the spec gives that ioctl
  (spec/gunyah.md §2, spec/geniezone.md §1.1; EBADF, ENOTTY and EFAULT for
  every one) on its own file: on a closed fd only EBADF, on another file
  only ENOTTY; TypeError or OverflowError is the caller's own conversion of a
  Python value, before any syscall, and passes.
- After every step the kernel model recorded no bug (``Host.bugs``, and the
  RM's on Gunyah) and no Gunyah VM's status went backwards.
- No step hangs: :meth:`Checker.bounded` ends a GZVM_RUN with a signal, and a
  campaign's watchdog ends a step that outlives its ``--step-limit``.
- After the example, with every fd closed and every mapping unmapped, the host
  (and the hypervisor under it) holds what it held before (vmm/fuzz/leaks.py).

A failure is an AssertionError whose message names it.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections import Counter
from contextlib import contextmanager

from vmm.fuzz import leaks

COMMON = {errno.EBADF, errno.ENOTTY, errno.EFAULT}
# The RM's errors as the driver converts them (VM_START is made of RM calls).
RM = {
    errno.ENOMEM,
    errno.ENODEV,
    errno.EPERM,
    errno.EINVAL,
    errno.EBUSY,
    errno.EOPNOTSUPP,
    errno.EBADMSG,
    errno.E2BIG,
}
# gzvm_err_to_errno's range: what an ioctl forwarding EL2's answer may return.
EL2 = {errno.ENOMEM, errno.EINVAL, errno.EOPNOTSUPP, errno.EAGAIN, errno.EFAULT}
ALLOWED = {
    "gunyah": {
        "GUNYAH_CREATE_VM": {errno.EINVAL},
        "GUNYAH_CREATE_GUEST_MEM": {errno.EINVAL, errno.ENOMEM},
        "GUNYAH_VM_SET_DTB_CONFIG": {errno.EOVERFLOW},
        # spec/gunyah.md §2.4: EINTR (the status lock's wait), ENOMEM (the xarray)
        "GUNYAH_VM_SET_BOOT_CONTEXT": {errno.EINVAL, errno.EINTR, errno.ENOMEM},
        "GUNYAH_VM_MAP_MEM": {
            errno.EINVAL,
            errno.EEXIST,
            errno.ENOENT,
            errno.EOVERFLOW,
            errno.ENOMEM,
        },
        "GUNYAH_VM_ADD_FUNCTION": {
            errno.EINVAL,
            errno.ENOENT,
            errno.EEXIST,
            errno.EBADF,
            errno.ENOMEM,
            errno.ENODEV,
        },
        "GUNYAH_VM_REMOVE_FUNCTION": {errno.ENOENT, errno.ENOMEM, errno.EINTR},  # §2.4
        # §2.3: an interrupted wait for the status lock is EINTR
        "GUNYAH_VM_START": {errno.EINVAL, errno.ENOENT, errno.ENODEV, errno.EINTR} | RM,
        # §2.6 step 4 and §3.4: vcpu_run's other errors through gunyah_error_remap
        "GUNYAH_VCPU_RUN": {errno.ENODEV, errno.EINTR, errno.EINVAL, errno.EACCES, errno.EBUSY},
        "GUNYAH_VCPU_MMAP_SIZE": set(),
    },
    "gzvm": {
        "GZVM_CREATE_VM": {errno.EINVAL} | EL2,
        "GZVM_CHECK_EXTENSION": {errno.EINVAL, errno.EOPNOTSUPP},
        "GZVM_SET_MEMORY_REGION": set(),
        "GZVM_CREATE_VCPU": {errno.EINVAL} | EL2,
        "GZVM_SET_USER_MEMORY_REGION": {errno.EINVAL},
        "GZVM_IRQ_LINE": set(),
        "GZVM_IRQFD": {errno.EINVAL, errno.EBUSY},
        "GZVM_IOEVENTFD": {errno.EINVAL, errno.EEXIST, errno.ENOENT},
        # ENODEV: the VM fd is released (the model's, Documentation/geniezone.rst);
        # EL2's errno: a RUN hypercall EL2 refuses (likewise)
        "GZVM_RUN": {errno.EINTR, errno.EINVAL, errno.ENODEV} | EL2,
        "GZVM_ENABLE_CAP": {errno.EINVAL} | EL2,
        "GZVM_GET_ONE_REG": {errno.EOPNOTSUPP},
        "GZVM_SET_ONE_REG": {errno.EINVAL, errno.ENODEV} | EL2,
        "GZVM_CREATE_DEVICE": {errno.EINVAL} | EL2,
        "GZVM_SET_DTB_CONFIG": EL2,
    },
}
# The files each ioctl is for (spec/gunyah.md §1.1, spec/geniezone.md §1.1): on a
# closed fd an ioctl is EBADF, on any other open file ENOTTY, whatever its argument.
HOME = {
    "gunyah": {
        "GUNYAH_CREATE_VM": {"/dev/gunyah"},
        "GUNYAH_CREATE_GUEST_MEM": {"/dev/gunyah"},
        "GUNYAH_VCPU_RUN": {"gh-vcpu"},
        "GUNYAH_VCPU_MMAP_SIZE": {"gh-vcpu"},
    },
    "gzvm": {
        "GZVM_CREATE_VM": {"/dev/gzvm"},
        "GZVM_CHECK_EXTENSION": {"/dev/gzvm", "gzvm-vm"},
        "GZVM_RUN": {"gzvm-vcpu"},
        "GZVM_GET_ONE_REG": {"gzvm-vcpu"},
        "GZVM_SET_ONE_REG": {"gzvm-vcpu"},
    },
}
VM_FILE = {"gunyah": "gunyah-vm", "gzvm": "gzvm-vm"}  # every other ioctl's file


def allowed(target: str, request: str, state: str) -> set[int]:
    """The errnos ``request`` may fail with on a file in ``state`` (Checker.state)."""
    if state == "closed":
        return {errno.EBADF}
    kind = state.split(":")[0]
    if kind not in HOME[target].get(request, {VM_FILE[target]}):
        return {errno.ENOTTY}
    return ALLOWED[target][request] | COMMON


# The Gunyah driver's VM statuses (GunyahRmVmStatus) in the order a VM goes through them.
ORDER = {0: 0, 5: 1, 8: 2, 2: 2, 3: 3, 9: 4, 11: 5}
RUN_LIMIT = 0.02  # seconds before a signal ends a GZVM_RUN (a guest may spin in its vectors)


class Checker:
    """The properties on one ``host`` (a ``kernel.boot`` of ``target``, "gunyah"
    or "gzvm"), from what it holds now. ``outcomes``, if given, counts each
    ioctl's (request, outcome, state of the fd's file)."""

    def __init__(self, host, target: str, outcomes: Counter | None = None):
        self.host, self.target, self.outcomes = host, target, outcomes
        self.holdings = leaks.holdings if target == "gunyah" else leaks.gz_holdings
        self.leaked = leaks.leaked if target == "gunyah" else leaks.gz_leaked
        self.before = self.holdings(host)
        self.seen_status: dict[int, int] = {}

    @contextmanager
    def ioctl(self, request: str, fd: int):
        """Around one ``host.ioctl(fd, request, ...)``: an errno the spec does not
        give ``request`` is an AssertionError naming it."""
        state = self.state(fd)
        outcome = "ok"
        try:
            yield
        except OSError as e:
            outcome = errno.errorcode.get(e.errno, str(e.errno))
            allows = allowed(self.target, request, state)
            if e.errno not in allows:
                names = ", ".join(sorted(errno.errorcode[n] for n in allows))
                raise AssertionError(
                    f"wrong errno: {request} on fd {fd} ({state}) "
                    f"failed with {outcome}; the spec allows {names}"
                ) from e
        except (TypeError, OverflowError) as e:
            outcome = type(e).__name__  # the caller's own conversion, before any syscall
        finally:
            if self.outcomes is not None:
                self.outcomes[request, outcome, state] += 1

    def state(self, fd: int) -> str:
        """What ``fd`` is now: "closed", "other" (an eventfd, any file not the
        kernel model's), or a file's kind, with its VM's status on Gunyah."""
        try:
            file = self.host.fdtable.get(fd)
        except (OSError, TypeError, OverflowError):
            return "other" if _open(fd) else "closed"
        try:
            kind = file.name.split(":")[0] or "other"
            vm = getattr(file.private, "vm", file.private)
            status = getattr(vm, "vm_status", None)
            return kind if status is None else f"{kind}:{status.name}"
        finally:
            file.put()

    def step(self) -> None:
        """After every step: no bug recorded, no Gunyah VM's status gone backwards."""
        host = self.host
        assert host.bugs == [], f"kernel bug: {host.bugs}"
        if self.target != "gunyah":
            return
        assert host.gunyah.firmware.rm.bugs == [], f"RM bug: {host.gunyah.firmware.rm.bugs}"
        for fd in host.fdtable.fds():
            try:
                file = host.fdtable.get(fd)
            except OSError:
                continue  # closed by another thread meanwhile
            try:
                status = getattr(file.private, "vm_status", None)
                if status is not None:
                    key = id(file.private)
                    was = self.seen_status.get(key, 0)
                    assert ORDER[status] >= was, f"VM status went backwards: {status.name}"
                    self.seen_status[key] = ORDER[status]
            finally:
                file.put()

    @contextmanager
    def bounded(self):
        """A signal to this thread after RUN_LIMIT (a run that would not end by
        itself returns EINTR); one that came after the call returned is taken."""
        host, me = self.host, threading.get_ident()
        timer = threading.Timer(RUN_LIMIT, host.pthread_kill, (me, signal.SIGUSR1))
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()
            if host.signals.pending():
                host.signals.deliver()

    def close_all(self, fds, mappings=()) -> None:
        """Close ``fds`` (EBADF for one a step closed already), unmap ``mappings``."""
        host = self.host
        for fd in sorted(set(fds)):
            try:
                host.close(fd)
            except OSError as e:
                assert e.errno == errno.EBADF, f"close({fd}): {e}"
        for mapping in mappings:
            host.munmap(mapping)
        host.eventfd_wq.quiesce()

    def teardown(self, fds, mappings=()) -> None:
        """Close ``fds`` (EBADF for one a step closed already), unmap ``mappings``;
        then anything the host holds that it did not hold before is a leak."""
        self.close_all(fds, mappings)
        leaked = self.leaked(self.before, self.holdings(self.host))
        assert leaked == {}, "leak after close: " + ", ".join(
            f"{name} {was} -> {now}" for name, (was, now) in leaked.items()
        )


def _open(fd) -> bool:
    try:
        os.fstat(fd)
    except (OSError, TypeError, OverflowError, ValueError):
        return False
    return True
