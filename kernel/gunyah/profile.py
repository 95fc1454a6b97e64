"""Which Gunyah driver generation /dev/gunyah behaves as (the kernel's build configuration).

``kernel.boot(uapi=...)`` picks one: ``"v16"`` (the upstream series, the
default), ``"ack-6.1"`` (android14-6.1, late: the driver shipping 6.1
devices run) or ``"ack-6.6"`` (android15-6.6, late). The drivers share the
RM transport, the message catalogue, the function framework, irqfd and
ioeventfd; a profile names only what differs (spec gunyah-ack.md §10), and
the driver consults it at those points.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


@dataclass(frozen=True)
class GunyahProfile:
    """What one driver generation does where the generations differ."""

    name: str
    memory: str  # "guest_memfd" (v16), "pinned" (6.1: vm_mgr_mm.c), "bindings" (6.6)
    vcpu_unknown_ioctl: int  # errno of a vCPU ioctl the driver does not know
    resume_action: bool  # the run page has mmio.resume_action and PAGE_FAULT exits
    mmio_retry: bool  # mmio.resume_action RETRY is taken (else EINVAL, as any unknown value)
    boot_context: bool  # SET_BOOT_CONTEXT exists
    reclaim_region: bool  # GH_VM_RECLAIM_REGION exists
    auth_ioctls: bool  # GH_VM_ANDROID_MAP_CMA_MEM and SET_AUTH_TYPE exist
    label_unique: bool  # SET_USER_MEM_REGION refuses a label in use (EEXIST)
    remove_empty_ok: bool  # REMOVE_FUNCTION with arg_size 0 is 0 (else ENOENT)
    ioeventfd_key_addr: bool  # an ioeventfd is removed by its address alone

    @property
    def android(self) -> bool:
        return self.memory != "guest_memfd"


V16 = GunyahProfile(
    name="v16",
    memory="guest_memfd",
    vcpu_unknown_ioctl=errno.ENOTTY,
    resume_action=True,
    mmio_retry=True,
    boot_context=True,
    reclaim_region=False,
    auth_ioctls=False,
    label_unique=False,
    remove_empty_ok=False,
    ioeventfd_key_addr=False,
)
ACK_61 = GunyahProfile(
    name="ack-6.1",
    memory="pinned",
    vcpu_unknown_ioctl=errno.EINVAL,
    resume_action=False,
    mmio_retry=False,
    boot_context=False,
    reclaim_region=False,
    auth_ioctls=False,
    label_unique=True,
    remove_empty_ok=True,
    ioeventfd_key_addr=True,
)
ACK_66 = GunyahProfile(
    name="ack-6.6",
    memory="bindings",
    vcpu_unknown_ioctl=errno.ENOTTY,
    resume_action=True,
    mmio_retry=False,
    boot_context=True,
    reclaim_region=True,
    auth_ioctls=True,
    label_unique=False,
    remove_empty_ok=False,
    ioeventfd_key_addr=False,
)
PROFILES = {p.name: p for p in (V16, ACK_61, ACK_66)}


def gunyah_profile(name: str) -> GunyahProfile:
    """The profile called ``name``; ValueError for one there is not."""
    profile = PROFILES.get(name)
    if profile is None:
        raise ValueError(f"unknown uapi {name!r}: expected one of {tuple(PROFILES)}")
    return profile
