"""What the two ioctl state machines share: the host, the fds, the script.

:class:`IoctlMachine` is a Hypothesis ``RuleBasedStateMachine`` over one
booted host per process (``kernel.boot`` is slow; every example gives back
what it took, which is one of the properties). Each step is done through
a method that also writes it as Python into ``script``: the calls on the
Host, each ioctl inside its :class:`~vmm.fuzz.check.Checker` block, a
``check.step()`` after it and ``check.teardown`` at the end, so the script
of a failing example replays it with no Hypothesis
(:mod:`vmm.fuzz.reproducer`).

The machine may close any fd, its own device fd included: a later file may
get that number, so the device is opened again (:meth:`device`) before the
next CREATE_VM or CREATE_GUEST_MEM instead of using the stale number.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vmm.fuzz.check import Checker

# syzkaller-style values of both machines: 32-bit ids, labels and flags; pointers nothing maps
U32 = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x7FFF_FFFF, 0xFFFF_FFFF])
BAD_POINTERS = st.sampled_from([0, 8, 0xFFFF_FFFF_FFFF_F000, -1])


class Src(int):
    """An int argument whose value is only known in this process (a user address):
    the script computes it from ``text``."""

    def __new__(cls, value: int, text: str):
        self = super().__new__(cls, value)
        self.text = text
        return self

    def __repr__(self) -> str:
        return self.text


def value_text(value) -> str:
    """``value`` as the script writes it: hex for large ints, Src as its text."""
    if isinstance(value, Src):
        return value.text
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 9:
        return hex(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {value_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return repr(value)


class Campaign:
    """What a campaign counts across the examples of one process (none in CI):
    examples, every ioctl made on the host (``calls``: the fuzzed ones and
    those of VMs built right and started), and each fuzzed or started one's
    outcome."""

    def __init__(self):
        self.examples = 0
        self.calls = 0
        self.outcomes: Counter = Counter()  # (request, outcome, state) -> count
        self.tick = time.monotonic()  # when the machine last made a call


class CountingHost:
    """A Host whose ioctls a campaign counts; everything else is the Host's."""

    def __init__(self, host, campaign: Campaign):
        self._host, self._campaign = host, campaign

    def ioctl(self, fd: int, request: int, arg=0) -> int:
        self._campaign.calls += 1
        return self._host.ioctl(fd, request, arg)

    def __getattr__(self, name: str):
        return getattr(self._host, name)


class IoctlMachine(RuleBasedStateMachine):
    """The common rules; a subclass sets TARGET, DEVICE, MODULE (the uapi module's
    name in the script) and boots its host in ``boot``."""

    TARGET = DEVICE = MODULE = ""
    MAKES_FDS: tuple[str, ...] = ()  # requests whose result is a new fd
    FAULTS: dict | None = None  # armed on the host's RM calls (a campaign's --inject)
    campaign: Campaign | None = None
    current: IoctlMachine | None = None  # the machine of the latest example
    _hosts: dict = {}

    def __init__(self):
        super().__init__()
        host = self.shared_host()
        self.host = host if self.campaign is None else CountingHost(host, self.campaign)
        outcomes = self.campaign.outcomes if self.campaign is not None else None
        self.check = Checker(self.host, self.TARGET, outcomes)
        self.script: list[str] = []
        self.bound: set[int] = set()  # fds the script names fd[n]
        IoctlMachine.current = self
        self.open: set[int] = set()
        self.closed: set[int] = set()
        self.mappings: dict[str, object] = {}  # the script's name -> mapping
        self.dev: int | None = None
        self.device()

    @classmethod
    def shared_host(cls):
        host = cls._hosts.get(cls.TARGET)
        if host is None:
            host = cls._hosts[cls.TARGET] = cls.boot()
        return host

    @classmethod
    def boot(cls):
        raise NotImplementedError

    @classmethod
    def shutdown(cls) -> None:
        """Power the process's hosts off (the end of a test module or a campaign)."""
        for host in cls._hosts.values():
            host.shutdown()
        cls._hosts.clear()

    def say(self, line: str) -> None:
        self.script.append(line)
        if self.campaign is not None:
            self.campaign.tick = time.monotonic()

    def device(self) -> int:
        """The machine's device fd, opened again if a step closed it."""
        if self.dev is None:
            self.say(f"host.open({self.DEVICE!r})")
            self.dev = self.host.open(self.DEVICE)
            self.bind(self.dev)
            self.open.add(self.dev)
        return self.dev

    def bind(self, fd: int) -> None:
        """Name the fd the last line made: the script's ``fd[n] = ...`` (in a
        reproducer's process, each fd gets its own number)."""
        self.script[-1] = f"fd[{fd}] = {self.script[-1]}"
        self.bound.add(fd)

    def fd_value(self, n: int) -> int:
        """An fd number as the script writes it: ``fd[n]`` for one a step made."""
        return Src(n, f"fd[{n}]") if n in self.bound else n

    def do_ioctl(self, fd: int, request: str, arg, text: str | None = None, pre=()) -> object:
        """``host.ioctl(fd, request, arg)`` checked; the result, or None if it failed.
        ``text`` is ``arg`` as the script writes it, after the lines ``pre``."""
        for line in pre:
            self.say(line)
        shown = text if text is not None else value_text(arg)
        where = value_text(self.fd_value(fd))
        self.say(f"with check.ioctl({request!r}, {where}):")
        self.say(f"    host.ioctl({where}, {self.MODULE}.{request}, {shown})")
        result = None
        with self.check.ioctl(request, fd):
            result = self.host.ioctl(fd, getattr(self.uapi(), request), arg)
        if request in self.MAKES_FDS and result is not None and self.host.fdtable.holds(result):
            self.script[-1] = self.script[-1].replace(
                "host.ioctl(", f"fd[{result}] = host.ioctl(", 1
            )
            self.bound.add(result)
            self.open.add(result)
        return result

    def uapi(self):
        raise NotImplementedError

    def fd_candidates(self) -> list[int]:
        return [*sorted(self.open | self.closed), 999999, -1]

    def close(self, fd: int) -> None:
        self.say(f"host.close({value_text(self.fd_value(fd))})")
        self.host.close(fd)
        self.open.discard(fd)
        self.closed.add(fd)
        if fd == self.dev:
            self.dev = None  # its number may come back as another file

    @rule(data=st.data())
    def close_one(self, data):
        if self.open:
            self.close(data.draw(st.sampled_from(sorted(self.open))))

    @invariant()
    def properties_of_the_step(self):
        self.say("check.step()")
        self.check.step()

    def teardown(self):
        """Close and unmap everything; then the leak check, unless a step failed
        already. A failed example's host is not reused: the next boots afresh."""
        fds, names = sorted(self.open), list(self.mappings)
        shown = value_text([self.fd_value(fd) for fd in fds])
        self.say(f"check.teardown({shown}, [{', '.join(names)}])")
        failing = isinstance(sys.exc_info()[1], Exception)  # not Hypothesis's own StopTest
        try:
            if failing:
                self.check.close_all(fds, list(self.mappings.values()))
            else:
                self.check.teardown(fds, list(self.mappings.values()))
        except BaseException:
            failing = True
            raise
        finally:
            if failing:
                self._hosts.pop(self.TARGET).shutdown()
        if self.campaign is not None:
            self.campaign.examples += 1
