"""The firmware's door for the host kernel (hyp/platform.py): revoking host access."""

from kernel.mm import PAGE_SIZE
from kernel.mmap import MAP_ANONYMOUS, MAP_PRIVATE

ANON = MAP_PRIVATE | MAP_ANONYMOUS


def test_revoking_host_access_zeroes_each_mapping_and_tells_revoked_per_run(host):
    """revoke_host_access zeroes the pages in every host mapping of them and calls
    Firmware.revoked once per contiguous run of each mapping, with its offset."""
    firmware = host.drivers.firmware
    mapping = host.mmap(-1, 4 * PAGE_SIZE, 3, ANON)
    mapping[:] = b"\x5a" * (4 * PAGE_SIZE)
    pa = host.mm.vma_lookup(host.user_address(mapping)).anon.pa
    told = []
    firmware.revoked = lambda m, offset, length: told.append((m is mapping, offset, length))
    try:
        firmware.revoke_host_access(pa + PAGE_SIZE, 2 * PAGE_SIZE)
    finally:
        firmware.revoked = None
    assert told == [(True, PAGE_SIZE, 2 * PAGE_SIZE)]
    assert bytes(mapping[PAGE_SIZE : 3 * PAGE_SIZE]) == bytes(2 * PAGE_SIZE)
    assert bytes(mapping[:PAGE_SIZE]) == bytes(mapping[3 * PAGE_SIZE :]) == b"\x5a" * PAGE_SIZE
    host.munmap(mapping)
