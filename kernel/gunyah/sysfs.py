"""/sys/hypervisor for Gunyah (drivers/virt/gunyah/sysfs.c of the series' early postings).

What a VMM probes before it opens /dev/gunyah: ``/sys/hypervisor/type``
reads ``gunyah``, ``/sys/hypervisor/gunyah/api`` the API version (1) and
``/sys/hypervisor/gunyah/variant`` the variant hyp_identify reports, both in
decimal. The files are read-only: a write is EACCES at open, as for a 0444
sysfs attribute.
"""

from __future__ import annotations

from kernel.fs import File, FileOperations

ATTRIBUTES = {
    "/sys/hypervisor/type": lambda info: "gunyah",
    "/sys/hypervisor/gunyah/api": lambda info: str(info.api_version),
    "/sys/hypervisor/gunyah/variant": lambda info: str(info.variant),
}


class SysfsFops(FileOperations):
    def read(self, file: File, size: int) -> bytes:
        text, pos = file.private
        data = text[pos : pos + size]
        file.private = (text, pos + len(data))
        return data


SYSFS_FOPS = SysfsFops()


def sysfs_open(host, path: str) -> File:
    """The attribute file at ``path`` (its text is taken at open, as sysfs does)."""
    text = (ATTRIBUTES[path](host.gunyah.info) + "\n").encode()
    return File(SYSFS_FOPS, (text, 0), path)
