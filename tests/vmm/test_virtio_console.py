"""The virtio-console guest: data both ways over virtio, notifications through
ioeventfd (no exit), interrupts through irqfd."""

import os
import subprocess
import sys

import pytest

import kernel
from vmm.devices.virtio_mmio import QUEUE_NOTIFY
from vmm.guests import image
from vmm.vmm import VIRTIO_BASE, Vmm, VmmConfig


@pytest.mark.parametrize(("hypervisor", "name"), [("gunyah", "Gunyah"), ("geniezone", "GenieZone")])
def test_gunyah_sim_run_virtio_console_echoes_its_input(hypervisor, name):
    text = "".join(f"line {i}: the quick brown fox\n" for i in range(20))
    cli = [sys.executable, "-m", "vmm.cli", "run", "virtio-console", "--vcpus", "1"]
    p = subprocess.run(
        [*cli, "--hypervisor", hypervisor],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    greeting = f"virtio-console: running on {name}\nvirtio-console: type and I echo; Ctrl-D ends\n"
    assert p.stdout == greeting + text + "\nvirtio-console: bye\n"


def test_queue_notifications_never_exit_to_the_vmm():
    host = kernel.boot(dram_size=1 << 30)
    r, w = os.pipe()
    os.write(w, b"ping\n" * 50)
    os.close(w)
    out = []
    try:
        vmm = Vmm(host, VmmConfig(image("virtio-console"), "virtio-console"), out.append, r)
        report = vmm.run()
    finally:
        host.shutdown()
        os.close(r)
    assert report.clean
    assert b"".join(out).count(b"ping\n") == 50
    assert report.mmio[VIRTIO_BASE + QUEUE_NOTIFY] == 0  # every QueueNotify: an ioeventfd
    assert host.bugs == []
