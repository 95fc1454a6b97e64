"""``gunyah-sim exec``: native C programs (tests/native/*.c, built with the bundled zig)
against the model, through the real libc calls.

Most scripts run twice, as driver.c natively and as driver.py on a Host,
and both must print the same lines.
"""

import errno
import os
import re
import select
import signal
import socket
import subprocess
import sys

import pytest

import kernel
from tests.aarch64 import assemble
from tests.conformance.test_irqfd_ioeventfd import COUNTER, LABEL, SPI
from tests.kernel.gunyah.rmhelper import vm_config_dtb
from tests.native import Session, build, driver, errno_table, gunyah_sim
from tests.native.errno_table import LEND
from uapi.linux import gunyah as gh
from uapi.linux import gzvm as gz

RW_SHARE = gh.GUNYAH_MEM_FORCE_SHARE | gh.GUNYAH_MEM_ALLOW_READ | gh.GUNYAH_MEM_ALLOW_WRITE
MMIO, SHARED_IPA, RAM_IPA = 0x1000_0000, 0x9000_0000, 0x8000_0000


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """The test programs, built once: {"driver": path, "vcpus": path, "dir": path}."""
    out = tmp_path_factory.mktemp("native")
    return {
        "driver": build("driver", out),
        "vcpus": build("vcpus", out, "-lpthread"),
        "dir": out,
    }


def both(native, script: str, device: str = "/dev/gunyah", hypervisor: str = "gunyah"):
    """(native lines, Python lines) of ``script``; the native run's exit is clean."""
    host = kernel.boot(hypervisor=hypervisor)
    try:
        session = Session(host, native["driver"], device)
        lines = session.script(script)
        assert session.close() == 0
    finally:
        host.shutdown()
    host = kernel.boot(hypervisor=hypervisor)
    try:
        python = driver.run(host, script, device)
    finally:
        host.shutdown()
    return lines, python


def io(fd, name, arg=0, new="", uapi=gh):
    return f"ioctl {fd} {getattr(uapi, name):#x} {arg} {new}".rstrip()


def test_errno_table_is_the_same_natively_and_in_python(native):
    res = gunyah_sim("exec", "--", str(native["driver"]), stdin=errno_table.SCRIPT)
    assert res.returncode == 0, res.stderr
    assert [driver.errno_name(line) for line in res.stdout.splitlines()] == errno_table.EXPECTED
    host = kernel.boot()
    try:
        python = driver.run(host, errno_table.SCRIPT)
    finally:
        host.shutdown()
    assert [driver.errno_name(line) for line in python] == errno_table.EXPECTED


def test_descriptors_are_real_dup_shares_and_the_last_close_releases(native):
    host = kernel.boot()
    session = Session(host, native["driver"])
    try:
        assert session.do("open dev cloexec") == "open: 0"
        assert session.do("cloexec dev") == "cloexec: 1"
        assert session.do("fork-exec dev") == "fork-exec: 0"  # gone in an exec'd child
        assert session.do("open dev2") == "open: 0"
        assert session.do("fork-exec dev2") == "fork-exec: 1"
        assert session.do("close dev2") == "close: 0"
        assert session.do(io("dev", "GUNYAH_CREATE_VM", 0, "vm")) == "ioctl: fd"
        vm_fds = len(host.fdtable.fds())
        vcpu = io("vm", "GUNYAH_VM_ADD_FUNCTION", errno_table.VCPU_0, "vcpu")
        assert session.do(vcpu) == "ioctl: fd"
        size = gh.GUNYAH_VCPU_MMAP_SIZE
        assert session.do(f"fork-ioctl vcpu {size:#x}") == "fork-ioctl: 4096"  # its own channel
        assert session.do(f"fork-ioctl vcpu {size:#x}") == "fork-ioctl: 4096"
        assert session.do("close vcpu") == "close: 0"
        assert session.do("dup vm vm2") == "dup: 0"
        assert session.do("close vm") == "close: 0"
        assert len(host.fdtable.fds()) == vm_fds  # the dup holds the VM
        dtb = "s:8=0x80010000,8=0x2000"
        assert session.do(io("vm2", "GUNYAH_VM_SET_DTB_CONFIG", dtb)) == "ioctl: 0"
        assert session.do("dup2 vm2 vm2") == "dup2: 0"
        assert session.do("fdup vm2 vm3") == "fdup: 0"
        assert session.do("dup2 dev vm3") == "dup2: 0"  # vm3 is the device now
        assert session.do(io("vm3", "GUNYAH_CREATE_VM", 0, "vm4")) == "ioctl: fd"
        assert session.do("close vm4") == "close: 0"
        assert session.do(io("vm2", "GUNYAH_VM_SET_DTB_CONFIG", dtb)) == "ioctl: 0"
        assert session.do("close vm3") == "close: 0"
        assert session.do("close vm2") == "close: 0"
        # released before close returned: a VMM may create the next VM at once
        assert len(host.fdtable.fds()) == vm_fds - 1
        assert session.do(io("vm2", "GUNYAH_VM_SET_DTB_CONFIG", dtb)) == "ioctl: -1 9"  # EBADF
    finally:
        assert session.close() == 0
        host.shutdown()


GUEST = f"""
    ldr x9, ={SHARED_IPA:#x}
    ldr x0, [x9]
    add x0, x0, #1
    str x0, [x9, #8]
    ldr x10, ={MMIO:#x}
    ldr x1, [x10]
    str x1, [x9, #16]
    add x1, x1, #1
    str x1, [x10, #8]
    b .
"""


def _guest_files(native, source: str, vcpus: int = 1, doorbells=()):
    code, dtb = native["dir"] / "code.bin", native["dir"] / f"dtb{vcpus}-{len(doorbells)}"
    code.write_bytes(assemble(source))
    dtb.write_bytes(vm_config_dtb(vcpus, doorbells))
    return code, dtb


def _lent_vm(code, dtb) -> str:
    """Script lines for a VM (fds ``dev``, ``vm``, ``ram``): ``code`` and ``dtb`` loaded
    into a 2 MiB guest_memfd lent at RAM_IPA, its DTB config and boot PC set."""
    lend = f"s:8={RAM_IPA:#x},4={LEND:#x},4=$ram,8=0,8=0x200000"
    pc = f"s:4={gh.GUNYAH_VM_BOOT_CONTEXT_REG(gh.REG_SET_PC, 0):#x},4=0,8={RAM_IPA:#x}"
    return f"""open dev
{io("dev", "GUNYAH_CREATE_VM", 0, "vm")}
{io("dev", "GUNYAH_CREATE_GUEST_MEM", "s:8=0,8=0x200000", "ram")}
mmap ram 0x12000 0 image
load image 0 {code}
load image 0x10000 {dtb}
munmap image
{io("vm", "GUNYAH_VM_MAP_MEM", lend)}
{io("vm", "GUNYAH_VM_SET_DTB_CONFIG", "s:8=0x80010000,8=0x2000")}
{io("vm", "GUNYAH_VM_SET_BOOT_CONTEXT", pc)}"""


def test_run_page_and_guest_memory_are_shared_with_the_guest(native):
    code, dtb = _guest_files(native, GUEST)
    share = f"s:8={SHARED_IPA:#x},4={RW_SHARE:#x},4=$shared,8=0,8=0x1000"
    script = f"""
{_lent_vm(code, dtb)}
{io("dev", "GUNYAH_CREATE_GUEST_MEM", "s:8=0,8=0x1000", "shared")}
{io("vm", "GUNYAH_VM_MAP_MEM", share)}
{io("vm", "GUNYAH_VM_ADD_FUNCTION", errno_table.VCPU_0, "vcpu")}
mmap vcpu 0x1000 0 run
{io("vm", "GUNYAH_VM_START")}
mmap shared 0x1000 0 sh
poke sh 0 41
{io("vcpu", "GUNYAH_VCPU_RUN")}
peek run 8
peek run 16
peek sh 8
poke run 24 0x1234
{io("vcpu", "GUNYAH_VCPU_RUN")}
peek sh 16
peek run 16
peek run 24
poke run 0 1
{io("vcpu", "GUNYAH_VCPU_RUN")}
poke run 0 0
mmap ram 0x1000 0 lent
{io("vcpu", "GUNYAH_VCPU_RUN")}
peek run 8
peek run 24
munmap lent
munmap run
munmap sh
close vcpu
close shared
close ram
close vm
close dev
"""
    lines, python = both(native, script)
    assert lines == python
    peeks = [line.split()[1] for line in lines if line.startswith("peek")]
    mmio = f"{gh.GUNYAH_VCPU_EXIT_MMIO:#x}"
    # the guest read our 41 and wrote 42; our mmio.data 0x1234 reached its load
    assert peeks[:6] == [mmio, f"{MMIO:#x}", "0x2a", "0x1234", f"{MMIO + 8:#x}", "0x1235"]
    # the code page, mapped by us, is the host's again: the guest's fetch is refused
    # with the driver's -EPERM in page_fault.attempt, as on a device
    assert f"ioctl: -1 {errno.EINTR}" in lines  # immediate_exit, written by us
    assert int(peeks[6], 16) == gh.GUNYAH_VCPU_EXIT_PAGE_FAULT
    assert int(peeks[7], 16) & 0xFFFF_FFFF == -errno.EPERM & 0xFFFF_FFFF  # page_fault.attempt


def test_vcpu_threads_in_run_at_once_and_pthread_kill_is_eintr(native):
    code, dtb = _guest_files(native, "b .", 4)
    res = gunyah_sim("exec", "--", str(native["vcpus"]), str(code), str(dtb), "4", "kick")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"vcpu {i}: -1 4" for i in range(4)]  # EINTR


def test_sigkill_in_vcpu_run_on_4_vcpus_leaves_nothing(native):
    code, dtb = _guest_files(native, "b .", 4)
    shm = set(os.listdir("/dev/shm"))
    exe = native["vcpus"]
    cmd = [sys.executable, "-m", "vmm.cli", "exec", "--", str(exe), str(code), str(dtb), "4"]
    sim = subprocess.Popen([*cmd, "hang"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([sim.stdout], [], [], 60)
        assert ready and sim.stdout.readline() == b"running\n"
        (program,) = _children(sim.pid)
        os.kill(program, signal.SIGKILL)
        _, err = sim.communicate(timeout=60)
    finally:
        sim.kill()
    assert sim.returncode == 128 + signal.SIGKILL, err  # the program's death, no leak (70)
    assert b"kept state" not in err and b"Traceback" not in err
    assert not os.path.exists(f"/proc/{program}")
    assert set(os.listdir("/dev/shm")) == shm


def test_sigterm_to_exec_is_passed_on_and_its_status_is_the_programs(native):
    cmd = [sys.executable, "-m", "vmm.cli", "exec", "--", str(native["driver"])]
    sim = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        sim.stdin.write("open dev\n")
        sim.stdin.flush()
        assert sim.stdout.readline() == "open: 0\n"  # the program runs, served
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(60) == 128 + signal.SIGTERM
    finally:
        sim.kill()
        sim.communicate()


def _children(pid: int) -> list[int]:
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            kids += [int(k) for k in f.read().split()]
    return kids


IOEVENT = f"""
    ldr x10, ={MMIO:#x}
    str x0, [x10]
    str x0, [x10, #16]
    b .
"""


def test_ioeventfd_and_irqfd_take_the_programs_own_eventfds(native):
    code, dtb = _guest_files(native, IOEVENT)
    ioeventfd = f"s:4={gh.GUNYAH_FN_IOEVENTFD},4=32,8=^|8=0,8={MMIO:#x},4=8,4=$efd,4=0,4=0"
    irqfd = f"s:4={gh.GUNYAH_FN_IRQFD},4=16,8=^|4=$irq,4=7,4=0,4=0"
    irqfd_on = "s:4={},4=16,8=^|4=${},4=8,4=0,4=0".format
    irqfd_closed = f"s:4={gh.GUNYAH_FN_IRQFD},4=16,8=^|4=4000,4=9,4=0,4=0"  # open nowhere
    script = f"""
{_lent_vm(code, dtb)}
eventfd efd
eventfd irq
{io("vm", "GUNYAH_VM_ADD_FUNCTION", ioeventfd)}
{io("vm", "GUNYAH_VM_ADD_FUNCTION", irqfd)}
{io("vm", "GUNYAH_VM_ADD_FUNCTION", irqfd_on(gh.GUNYAH_FN_IRQFD, "ram"))}
{io("vm", "GUNYAH_VM_ADD_FUNCTION", irqfd_closed)}
{io("vm", "GUNYAH_VM_ADD_FUNCTION", errno_table.VCPU_0, "vcpu")}
mmap vcpu 0x1000 0 run
{io("vm", "GUNYAH_VM_START")}
{io("vcpu", "GUNYAH_VCPU_RUN")}
peek run 16
read efd 8
write irq 1
munmap run
close vcpu
close ram
close vm
close dev
"""
    lines, python = both(native, script)
    assert lines == python
    at = lines.index("ioctl: -1 22")  # a guest_memfd is no eventfd: EINVAL
    assert lines[at - 2 : at + 2] == ["ioctl: 0", "ioctl: 0", "ioctl: -1 22", "ioctl: -1 9"]
    assert f"peek: {MMIO + 16:#x}" in lines  # the first write went to the eventfd, no exit
    assert "read: 1" in lines


def test_irqfd_on_the_programs_eventfd_interrupts_the_guest(native):
    code, dtb = _guest_files(native, COUNTER, doorbells=((LABEL, SPI),))
    irqfd = f"s:4={gh.GUNYAH_FN_IRQFD},4=16,8=^|4=$irq,4={LABEL},4=0,4=0"
    script = f"""
{_lent_vm(code, dtb)}
eventfd irq
{io("vm", "GUNYAH_VM_ADD_FUNCTION", irqfd)}
{io("vm", "GUNYAH_VM_ADD_FUNCTION", errno_table.VCPU_0, "vcpu")}
mmap vcpu 0x1000 0 run
{io("vm", "GUNYAH_VM_START")}
{io("vcpu", "GUNYAH_VCPU_RUN")}
peek run 16
write irq 1
{io("vcpu", "GUNYAH_VCPU_RUN")}
peek run 16
peek run 24
write irq 1
{io("vcpu", "GUNYAH_VCPU_RUN")}
peek run 24
munmap run
close vcpu
close irq
close ram
close vm
close dev
"""
    lines, python = both(native, script)
    assert lines == python
    peeks = [line.split()[1] for line in lines if line.startswith("peek")]
    assert peeks == [f"{MMIO + 8:#x}", f"{MMIO:#x}", "0x1", "0x2"]  # ready, then 2 IRQs


GZ_GUEST = f"""
    ldr x9, ={RAM_IPA + 0x1000:#x}
    ldr x0, [x9]
    add x0, x0, #1
    str x0, [x9, #8]
    ldr x10, ={MMIO:#x}
    str x0, [x10]
    b .
"""


def _gz_reg(index: int) -> int:
    return gz.GZVM_REG_ARCH_ARM64 | gz.GZVM_REG_SIZE_U64 | gz.GZVM_REG_TYPE_GENERAL2 | index * 2


def test_gzvm_with_the_programs_own_anonymous_memory(native):
    """GenieZone memslots name the VMM's own memory: a plain mmap(MAP_ANONYMOUS) of
    the program is adopted, contents kept, and the guest shares it."""
    code = native["dir"] / "gz.bin"
    code.write_bytes(assemble(GZ_GUEST))
    region = f"s:4=0,4=0,8={RAM_IPA:#x},8=0x400000,8=@ram"
    pc = f"s:8={_gz_reg(32):#x},8=^|8={RAM_IPA:#x}"
    gicd = f"s:4={gz.GZVM_DEV_TYPE_ARM_VGIC_V3_DIST},4=0,8=0,8=0x3FFF0000,8=0x10000,8=0,8=0"
    gicr = f"s:4={gz.GZVM_DEV_TYPE_ARM_VGIC_V3_REDIST},4=0,8=0,8=0x3FFD0000,8=0x20000,8=0,8=0"
    script = f"""
open dev
{io("dev", "GZVM_CREATE_VM", 0, "vm", gz)}
anon ram 0x400000
load ram 0 {code}
poke ram 0x1000 41
{io("vm", "GZVM_SET_USER_MEMORY_REGION", region, uapi=gz)}
{io("vm", "GZVM_SET_USER_MEMORY_REGION", "s:4=1,4=0,8=0xC0000000,8=0x1000,8=8", uapi=gz)}
{io("vm", "GZVM_CREATE_VCPU", 0, "vcpu", gz)}
{io("vcpu", "GZVM_SET_ONE_REG", pc, uapi=gz)}
{io("vm", "GZVM_CREATE_DEVICE", gicd, uapi=gz)}
{io("vm", "GZVM_CREATE_DEVICE", gicr, uapi=gz)}
anon runbuf 0x1000
{io("vcpu", "GZVM_RUN", "@runbuf", uapi=gz)}
peek runbuf 0
peek runbuf 8
peek ram 0x1008
poke ram 0x1000 99
peek ram 0x1000
close vcpu
close vm
close dev
"""
    lines, python = both(native, script, "/dev/gzvm", "geniezone")
    assert lines == python
    peeks = [line.split()[1] for line in lines if line.startswith("peek")]
    assert peeks[0].endswith(f"{gz.GZVM_EXIT_MMIO:08x}")
    assert peeks[1:] == [f"{MMIO:#x}", "0x2a", "0x63"]
    assert "ioctl: -1 14" in lines  # memory the program never mapped: EFAULT as ever


def test_a_server_gone_is_eio_and_one_line_never_a_hang(native):
    host = kernel.boot()
    session = Session(host, native["driver"], stderr=subprocess.PIPE)
    try:
        assert session.do("open dev") == "open: 0"
        with session.server.lock:
            channels = list(session.server.channels.values())
        session.server.control.shutdown(socket.SHUT_RDWR)
        for channel in channels:
            channel.sock.shutdown(socket.SHUT_RDWR)
        assert session.do(io("dev", "GUNYAH_CREATE_VM", 0)) == f"ioctl: -1 {errno.EIO}"
        assert session.do("open dev2") == f"open: -1 {errno.EIO}"
    finally:
        session.close()
        host.shutdown()
    err = session.child.stderr.read()
    assert err.count("\n") == 1 and "gone" in err


@pytest.mark.parametrize(
    "choice", [["--uapi", "ack"], ["--uapi", "ack-6.1", "--hypervisor", "geniezone"]]
)
def test_exec_refuses_a_uapi_as_run_does(native, choice):
    res = gunyah_sim("exec", *choice, "--", str(native["driver"]))
    run = gunyah_sim("run", *choice, "hello")
    assert (res.returncode, run.returncode) == (2, 2)
    assert res.stderr.count("\n") == 1 and "--uapi" in res.stderr
    assert res.stderr.removeprefix("gunyah-sim exec: ") == run.stderr.removeprefix(
        "gunyah-sim run: "
    )


def test_exec_refuses_what_it_cannot_run(native):
    res = gunyah_sim("exec", "--", str(native["dir"] / "no-such-program"))
    assert res.returncode == 127 and res.stderr.count("\n") == 1
    res = gunyah_sim("exec")
    assert res.returncode == 2 and res.stderr.count("\n") == 1


def test_without_the_bundled_compiler_exec_says_which_extra_in_one_line(native, tmp_path):
    """No cached preload library and no ziglang: one line naming the abi extra."""
    (tmp_path / "ziglang").mkdir()
    (tmp_path / "ziglang" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(tmp_path))
    res = gunyah_sim("exec", "--", str(native["driver"]), env=env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "gunyah-sim[abi]" in res.stderr


def test_a_static_or_setuid_program_is_refused_in_one_line(native):
    static = build("static", native["dir"], "-static", "-nostdlib", "-ffreestanding")
    res = gunyah_sim("exec", "--", str(static))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "statically" in res.stderr
    setuid = native["dir"] / "setuid-driver"
    setuid.write_bytes(native["driver"].read_bytes())
    setuid.chmod(0o4755)
    res = gunyah_sim("exec", "--", str(setuid))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "setuid" in res.stderr


def test_trace_shows_the_programs_ioctls(native):
    script = "open dev\n" + io("dev", "GUNYAH_CREATE_VM", 0, "vm") + "\nclose vm\nclose dev\n"
    res = gunyah_sim("exec", "--trace", "--", str(native["driver"]), stdin=script)
    assert res.returncode == 0, res.stderr
    assert re.search(r"ioctl\(\d+, GUNYAH_CREATE_VM, 0\) = \d+", res.stderr)


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    """tests/native/edges.c, built once."""
    return build("edges", tmp_path_factory.mktemp("edges"), "-lpthread")


def exec_edges(edges, *args: str, hypervisor: str = "gunyah") -> subprocess.CompletedProcess:
    return gunyah_sim("exec", "--hypervisor", hypervisor, "--", str(edges), *args, timeout=300)


def test_threads_mapping_and_unmapping_at_once_keep_the_model_whole(edges):
    # one thread's freed address is another's next mapping: the model's unmap
    # must be done before the program's address is free
    res = exec_edges(edges, "mmrace", "3")
    assert (res.returncode, res.stdout, res.stderr) == (0, "mmrace: ok\n", "")


@pytest.mark.parametrize(
    "case, expected",
    [
        ("1", f"gzslot: {errno.EFAULT}"),  # a kernel address: no VMA of the program
        ("2", f"gzslot: {errno.EINVAL} 0 7"),  # the VMA is 12K: only 12K is a memslot
        ("3", "gzslot: 0 SIGSEGV"),  # the page stays read-only
        ("4", f"gzslot: {errno.EFAULT} 7"),  # text is not adopted, and still runs
        ("5", "gzslot: 0 7"),  # shared anonymous memory is adopted, its bytes kept
    ],
)
def test_a_gzvm_memslot_adopts_exactly_the_programs_anonymous_vma(edges, case, expected):
    res = exec_edges(edges, "gzslot", case, hypervisor="geniezone")
    assert (res.returncode, res.stdout, res.stderr) == (0, expected + "\n", "")


def test_threads_adopting_neighbouring_memory_at_once_never_see_efault(edges):
    """Four threads name fresh anonymous memory in memslots at once; mappings that
    merged into one VMA are that VMA (EINVAL for a part of it, as on a device),
    never EFAULT, and the model keeps nothing after the program."""
    res = exec_edges(edges, "gzrace", "4", hypervisor="geniezone")
    assert (res.returncode, res.stdout, res.stderr) == (0, "gzrace: efault 0\n", "")


def test_a_model_call_from_a_handler_inside_a_model_call_is_eio_not_a_hang(native):
    code, dtb = _guest_files(native, "b .", 1)
    res = gunyah_sim("exec", "--", str(native["vcpus"]), str(code), str(dtb), "1", "nested")
    assert (res.returncode, res.stdout) == (0, f"vcpu 0: -1 {errno.EINTR}\nhandler: {errno.EIO}\n")
    assert len(res.stderr.splitlines()) == 1, res.stderr


def test_vcpu_run_whose_sockets_were_replaced_ends_with_eio_on_a_signal(native):
    code, dtb = _guest_files(native, "b .", 1)
    res = gunyah_sim("exec", "--", str(native["vcpus"]), str(code), str(dtb), "1", "broken")
    assert (res.returncode, res.stdout) == (0, f"vcpu 0: -1 {errno.EIO}\n")
    assert res.stderr.count("\n") == 1 and "EIO" in res.stderr, res.stderr


def test_a_model_fd_received_over_a_unix_socket_is_the_model_file(edges):
    res = exec_edges(edges, "scm")
    assert (res.returncode, res.stdout, res.stderr) == (
        0,
        f"scm: {errno.EFAULT} {errno.EFAULT}\n",
        "",
    )


def test_open_of_the_device_path_checks_flags_as_a_character_device(edges):
    res = exec_edges(edges, "open")
    expected = f"open: {errno.EEXIST} {errno.ENOTDIR} {errno.ENOTDIR}\n"
    assert (res.returncode, res.stdout, res.stderr) == (0, expected, "")
