"""The VM manager's shared definitions (drivers/virt/gunyah/vm_mgr.h).

The labels of the resources every VM takes a ticket for at creation: its
address space and its four memory extents (where the host's and the
guest's private and shared memory live), in the RM's numbering.
"""

from __future__ import annotations

from enum import IntEnum

GUNYAH_VM_ADDRSPACE_LABEL = 0


class GunyahVmMemExtentLabel(IntEnum):
    GUEST_PRIVATE = 0
    HOST_SHARED = 1
    HOST_PRIVATE = 2
    GUEST_SHARED = 3
