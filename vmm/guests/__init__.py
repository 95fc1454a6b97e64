"""The bundled guests: AArch64 sources here, built images committed beside them.

``python -m vmm.guests.build`` rebuilds every image with the bundled
toolchain (the ``abi`` extra); a test checks the rebuild is byte-identical
to what is committed, so ``pip install`` and ``gunyah-sim run`` need no
compiler at all.
"""

from __future__ import annotations

from importlib import resources

GUESTS = {
    "hello": "says which hypervisor it runs on and its --cmdline; every vCPU says hello over "
    "the PL011; SYSTEM_OFF",
    "holding-cell": "a test guest driven through an MMIO mailbox (tests/holdingcell.py); under "
    "run the VMM's mailbox asks which hypervisor it runs on, prints it, then SYSTEM_OFF",
    "virtio-console": "a virtio-mmio console (ioeventfd + irqfd): echoes its input; Ctrl-D ends",
}


def image(name: str) -> bytes:
    """The built image of bundled guest ``name`` (KeyError if there is none)."""
    if name not in GUESTS:
        raise KeyError(name)
    return resources.files(__package__).joinpath(f"{name}.elf").read_bytes()
