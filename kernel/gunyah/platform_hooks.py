"""Platform hooks around memory given to VMs (drivers/virt/gunyah/gunyah_platform_hooks.c).

A platform (Qualcomm's SCM on a device) may need to act before memory
leaves the host and after it comes back. One set of
:class:`GunyahRmPlatformOps` can be registered per RM link; a second
registration is EEXIST. The wrappers do nothing when no ops (or no such
hook) are registered. ``mem_share`` calls the pre hook before the RM call
and the post-reclaim hook if the RM call fails; ``mem_reclaim`` calls the
post hook only when the RM call succeeds. Demand paging calls
``pre_demand_page`` before a folio is donated and ``release_demand_page``
after it is taken back (v16 tests the wrong pointer before the latter; the
intended behaviour is followed). A hook fails by raising OSError.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class GunyahRmPlatformOps:
    pre_mem_share: Callable | None = None  # (rm, parcel)
    post_mem_reclaim: Callable | None = None  # (rm, parcel)
    pre_demand_page: Callable | None = None  # (rm, vmid, access, pa, size)
    release_demand_page: Callable | None = None  # (rm, vmid, access, pa, size)


def gunyah_rm_register_platform_ops(rm, ops: GunyahRmPlatformOps) -> None:
    if rm.platform_ops is not None:
        raise OSError(errno.EEXIST, "platform ops already registered")
    rm.platform_ops = ops


def gunyah_rm_unregister_platform_ops(rm, ops: GunyahRmPlatformOps) -> None:
    if rm.platform_ops is ops:
        rm.platform_ops = None


def _hook(rm, name: str):
    ops = rm.platform_ops
    return getattr(ops, name) if ops is not None else None


def gunyah_rm_platform_pre_mem_share(rm, parcel) -> None:
    if hook := _hook(rm, "pre_mem_share"):
        hook(rm, parcel)


def gunyah_rm_platform_post_mem_reclaim(rm, parcel) -> None:
    if hook := _hook(rm, "post_mem_reclaim"):
        hook(rm, parcel)


def gunyah_rm_platform_pre_demand_page(rm, vmid: int, access: int, pa: int, size: int) -> None:
    if hook := _hook(rm, "pre_demand_page"):
        hook(rm, vmid, access, pa, size)


def gunyah_rm_platform_reclaim_demand_page(rm, vmid: int, access: int, pa: int, size: int) -> None:
    if hook := _hook(rm, "release_demand_page"):
        hook(rm, vmid, access, pa, size)
