"""Partitions (hyp/core/partition_standard): the owners that create objects.

A partition owns memory in the memdb and creates every other object; the
root partition owns all of DRAM but the hypervisor's own pool at boot.
"""

from __future__ import annotations

from hyp.gunyah.object import Object, ObjectState, ObjectType


class Partition(Object):
    TYPE = ObjectType.PARTITION

    @classmethod
    def root(cls, hyp) -> Partition:
        partition = cls(hyp, None)
        partition.state = ObjectState.ACTIVE
        return partition
