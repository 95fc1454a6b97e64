"""kernel/trace.py: a Tracer's lines and timeline, and what the Host gives it."""

import errno
import os
import threading

import pytest

import kernel
from tests.gunyahvm import fn_desc
from uapi.linux import gunyah as gh


def test_lines_come_in_order_and_the_timeline_has_a_track_per_thread():
    lines = []
    tracer = kernel.Tracer(lines.append, timeline=True)
    start = tracer.start()
    tracer.emit("ioctl(3, X, 0) = 0", "X", "ioctl", start)
    worker = threading.Thread(target=tracer.hyp_line, args=("vcpu_run(state=READY)",), name="vcpu0")
    worker.start()
    worker.join()
    tracer.emit("rm_call(VM_START{vmid=1}) = 0 bytes", "VM_START", "rm", start, "RM")
    assert lines == [
        "ioctl(3, X, 0) = 0",
        "vcpu_run(state=READY)",
        "rm_call(VM_START{vmid=1}) = 0 bytes",
    ]
    events = tracer.chrome_trace()["traceEvents"]
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M"}
    assert list(tracks) == ["host", "vcpu0", "RM"]
    spans = [e for e in events if e["ph"] == "X"]
    assert [(e["name"], e["tid"]) for e in spans] == [
        ("X", tracks["host"]),
        ("VM_START", tracks["RM"]),
    ]
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)
    (exit_,) = [e for e in events if e["ph"] == "i"]
    assert exit_["name"] == "vcpu_run" and exit_["tid"] == tracks["vcpu0"] and exit_["cat"] == "hyp"


def test_a_tracer_without_a_timeline_has_no_chrome_trace():
    with pytest.raises(ValueError, match="no timeline"):
        kernel.Tracer(print).chrome_trace()


@pytest.fixture
def traced():
    lines = []
    host = kernel.boot(dram_size=1 << 30, trace=lines.append)
    yield host, lines
    host.shutdown()


def test_an_ioctl_with_a_bad_pointer_is_traced_with_its_errno(traced):
    host, lines = traced
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    with pytest.raises(OSError) as e:
        host.ioctl(vm, gh.GUNYAH_VM_MAP_MEM, 0x10)
    assert e.value.errno == errno.EFAULT
    assert lines[-1] == f"ioctl({vm}, GUNYAH_VM_MAP_MEM, {{?}}) = -1 EFAULT"
    host.close(vm)
    host.close(dev)


def test_a_premature_irqfd_injection_is_traced(traced):
    host, lines = traced
    dev = host.open("/dev/gunyah")
    vm = host.ioctl(dev, gh.GUNYAH_CREATE_VM, 0)
    efd = host.eventfd()
    arg = gh.ffi.new("struct gunyah_fn_irqfd_arg *", {"fd": efd, "label": 9})
    desc, _keep = fn_desc(gh.GUNYAH_FN_IRQFD, arg)
    host.ioctl(vm, gh.GUNYAH_VM_ADD_FUNCTION, desc)
    assert f"arg={{fd={efd}, label=9, flags=0x0, padding=0}}" in lines[-1]
    os.eventfd_write(efd, 1)
    host.eventfd_wq.quiesce()
    assert "irqfd(label=9) = premature, dropped" in lines
    host.close(efd)
    host.close(vm)
    host.close(dev)
