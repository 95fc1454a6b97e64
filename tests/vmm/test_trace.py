"""``gunyah-sim run --trace`` (golden, both hypervisors) and ``--trace-out`` (trace-event JSON).

The golden files are the trace of the bundled hello guest on one vCPU, with
what differs between runs normalised away: descriptor numbers become fdN in
order of first appearance, host user addresses (12 hex digits: guest ones
have fewer, GZVM register ids more) USERADDR, and the run-time summary
lines are dropped. Regenerate them after a
deliberate change with GUNYAH_SIM_UPDATE_GOLDEN=1.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent.parent / "data" / "trace"
FD_RETURNING = ("CREATE_VM", "CREATE_GUEST_MEM", "ADD_FUNCTION", "CREATE_VCPU")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "vmm.cli", *args], capture_output=True, text=True, timeout=120
    )


def normalise(stderr: str) -> str:
    fds: dict[str, str] = {}

    def fd(number: str) -> str:
        return fds.setdefault(number, f"fd{len(fds)}")

    lines = []
    for line in stderr.splitlines():
        if line.startswith("gunyah-sim:") or not line.strip():
            continue
        line = re.sub(r"ioctl\((\d+),", lambda m: f"ioctl({fd(m.group(1))},", line)
        line = re.sub(r"\bfd=(\d+)", lambda m: f"fd={fd(m.group(1))}", line)
        line = re.sub(r"guest_mem_fd=(\d+)", lambda m: f"guest_mem_fd={fd(m.group(1))}", line)
        if any(f"_{name}," in line for name in FD_RETURNING):
            line = re.sub(r"\) = ([1-9]\d*)$", lambda m: f") = {fd(m.group(1))}", line)
        # The VMM's own pointers, wherever its allocator put them (a non-PIE Python's
        # heap sits at a 7-digit address, a mapping at a 12-digit one).
        line = re.sub(r"\b(userspace_addr=)0x[0-9a-f]+", r"\1USERADDR", line)
        line = re.sub(
            r"(GZVM_SET_ONE_REG, \{id=0x[0-9a-f]+, addr=)0x[0-9a-f]+", r"\1USERADDR", line
        )
        line = re.sub(r"(GZVM_RUN, )0x[0-9a-f]+", r"\1USERADDR", line)
        line = re.sub(r"0x[0-9a-f]{12}\b", "USERADDR", line)  # any other user address
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
def test_trace_of_hello_matches_the_golden_file(hypervisor):
    p = run_cli("run", "hello", "--vcpus", "1", "--trace", "--hypervisor", hypervisor)
    assert p.returncode == 0, p.stderr
    got = normalise(p.stderr)
    golden = GOLDEN / f"hello-{hypervisor}.txt"
    if os.environ.get("GUNYAH_SIM_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text()


def test_trace_decodes_structs_and_rm_calls_by_name():
    text = (GOLDEN / "hello-gunyah.txt").read_text()
    assert "GUNYAH_VM_MAP_MEM, {guest_addr=0x80000000, flags=DEFAULT_ACCESS|RWX," in text
    assert "GUNYAH_VM_ADD_FUNCTION, {type=VCPU, arg_size=0x4, arg={id=0}}) = fd" in text
    assert "rm_call(VM_ALLOCATE{vmid=0}) = vmid=128" in text
    assert "rm_call(MEM_LEND{mem_type=0x0, flags=0x0, label=0x0, acl=[128:RWX], sgl=[" in text
    assert "psci(fn=SYSTEM_OFF, vcpu=vm128.cpu0)" in text
    text = (GOLDEN / "hello-geniezone.txt").read_text()
    assert "GZVM_SET_USER_MEMORY_REGION, {slot=0, flags=0, guest_phys_addr=0x80000000," in text
    assert "GZVM_CREATE_DEVICE, {dev_type=ARM_VGIC_V3_DIST," in text


@pytest.mark.parametrize(
    ("hypervisor", "spi"),
    [("gunyah", "virq_assert(trigger=level, virq=0x30)"), ("geniezone", "irq_line(intid=0x30")],
)
def test_trace_shows_the_interrupt_path(hypervisor, spi):
    run = ["run", "virtio-console", "--trace", "--vcpus", "1", "--hypervisor", hypervisor]
    p = subprocess.run(
        [sys.executable, "-m", "vmm.cli", *run],
        input="hi\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "ioeventfd(addr=0xa000050, len=4, value=0x1) -> eventfd signalled" in p.stderr
    assert "irqfd(" in p.stderr
    assert spi in p.stderr


@pytest.mark.parametrize("hypervisor", ["gunyah", "geniezone"])
def test_trace_out_writes_trace_event_json_with_a_track_per_vcpu(tmp_path, hypervisor):
    out = tmp_path / "trace.json"
    p = run_cli("run", "hello", "--vcpus", "2", "--hypervisor", hypervisor, "--trace-out", out)
    assert p.returncode == 0, p.stderr
    assert "ioctl(" not in p.stderr  # --trace-out alone prints no trace
    events = json.loads(out.read_text())["traceEvents"]
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M"}
    assert all(e["name"] == "thread_name" for e in events if e["ph"] == "M")
    assert {"host", "vcpu0", "vcpu1"} <= set(tracks)
    assert ("RM" in tracks) == (hypervisor == "gunyah")
    for e in events:
        assert e["ph"] in ("M", "X", "i") and e["pid"] == 1 and e["tid"] in tracks.values()
        if e["ph"] != "M":
            assert isinstance(e["ts"], int) and e["ts"] >= 0 and e["name"] and e["cat"]
        if e["ph"] == "X":
            assert e["dur"] >= 0
    by_track = {
        name: [e for e in events if e["tid"] == tid and e["ph"] != "M"]
        for name, tid in tracks.items()
    }
    for vcpu in ("vcpu0", "vcpu1"):  # each vCPU thread: its RUN ioctls and its exits
        assert any(e["ph"] == "X" and e["name"].endswith("RUN") for e in by_track[vcpu])
        assert any(e["ph"] == "i" and e["cat"] == "hyp" for e in by_track[vcpu])
    if hypervisor == "gunyah":
        assert {"VM_ALLOCATE", "VM_START"} <= {e["name"] for e in by_track["RM"]}
        assert all(e["ph"] == "X" and e["cat"] == "rm" for e in by_track["RM"])


def test_trace_out_to_an_unwritable_file_is_one_line_before_the_vm_runs(tmp_path):
    p = run_cli("run", "hello", "--vcpus", "1", "--trace-out", tmp_path / "no" / "t.json")
    assert p.returncode == 2
    assert p.stdout == ""
    assert (
        p.stderr
        == f"gunyah-sim run: --trace-out {tmp_path / 'no' / 't.json'}: No such file or directory\n"
    )
