"""Stage-2 tables in DRAM: blocks where aligned, pages elsewhere, splits on unmap."""

import pytest

from hyp.arch.pgtable import ACCESS_R, ACCESS_W, ACCESS_X, PagePool, S2Attrs, Stage2
from hyp.hw.memory import Dram

RW = S2Attrs(ACCESS_R | ACCESS_W)


@pytest.fixture
def stage2():
    dram = Dram(0x4000_0000, 1 << 30)
    pool = PagePool(dram, 0x4000_0000 + (1 << 29), 16 << 20)
    yield Stage2(pool)
    dram.close()


def test_lookup_after_map(stage2):
    stage2.map(0x8000_0000, 0x4010_0000, 0x3000, RW)
    assert stage2.lookup(0x8000_1234) == (0x4010_1234, RW)
    assert stage2.lookup(0x8000_3000) is None
    assert stage2.lookup(1 << 40) is None


def test_aligned_ranges_use_blocks(stage2):
    used = stage2.pool.used
    stage2.map(0x8000_0000, 0x4000_0000, 1 << 30, S2Attrs(ACCESS_R | ACCESS_X))
    assert stage2.pool.used == used  # one level-1 block, no new table
    stage2.map(0xC020_0000, 0x4020_0000, 2 << 20, RW)
    assert stage2.pool.used == used + 1  # a level-2 table holding a 2 MiB block
    assert stage2.lookup(0xBFFF_FFFF) == (0x7FFF_FFFF, S2Attrs(ACCESS_R | ACCESS_X))
    assert stage2.lookup(0xC020_0010) == (0x4020_0010, RW)


def test_partial_unmap_splits_blocks(stage2):
    stage2.map(0x8000_0000, 0x4000_0000, 2 << 20, RW)
    stage2.unmap(0x8000_1000, 0x1000)
    assert stage2.lookup(0x8000_1000) is None
    assert stage2.lookup(0x8000_0FFF) == (0x4000_0FFF, RW)
    assert stage2.lookup(0x8000_2000) == (0x4000_2000, RW)
    assert stage2.lookup(0x801F_FFFF) == (0x401F_FFFF, RW)


def test_attributes_round_trip():
    for access in range(8):
        attrs = S2Attrs(access, 0x1)
        assert S2Attrs.of(attrs.descriptor(0x1000, 3)) == attrs


def test_destroy_returns_every_table_page(stage2):
    before = stage2.pool.used
    stage2.map(0x8000_0000, 0x4000_0000, 0x5000, RW)
    stage2.map(0x1_0000_0000, 0x4100_0000, 0x1000, RW)
    stage2.destroy()
    assert stage2.pool.used == before - 2  # the two root pages too


def test_map_pages_maps_scattered_pages_across_tables(stage2):
    # 600 pages from 0x801F_0000: 16 in one level-3 table, the rest in the next
    pas = [0x4040_0000 + ((i * 7) % 600) * 0x1000 for i in range(600)]
    stage2.map_pages(0x801F_0000, pas, RW)
    for i, pa in enumerate(pas):
        assert stage2.lookup(0x801F_0000 + i * 0x1000 + 8) == (pa + 8, RW)
    assert stage2.lookup(0x801F_0000 - 0x1000) is None
    assert stage2.lookup(0x801F_0000 + 600 * 0x1000) is None


def test_unmap_of_pages_across_tables_leaves_the_edges(stage2):
    stage2.map(0x8000_0000, 0x4040_0000, 0x40_0000, RW)  # two 2 MiB blocks
    stage2.unmap(0x8010_0000, 0x20_2000)  # splits both, then pages across the boundary
    assert stage2.lookup(0x800F_F000) == (0x404F_F000, RW)
    for ipa in range(0x8010_0000, 0x8030_2000, 0x1000):
        assert stage2.lookup(ipa) is None
    assert stage2.lookup(0x8030_2000) == (0x4070_2000, RW)


def test_remembered_walks_follow_every_change(stage2):
    """A lookup answers from the tables as they are now, though it remembers
    walks: each page looked up before a map, an unmap and a split."""
    assert stage2.lookup(0x8000_1000) is None
    stage2.map(0x8000_0000, 0x4000_0000, 2 << 20, RW)
    assert stage2.lookup(0x8000_1000) == (0x4000_1000, RW)
    assert stage2.lookup(0x8000_2000) == (0x4000_2000, RW)
    stage2.unmap(0x8000_1000, 0x1000)  # splits the block
    assert stage2.lookup(0x8000_1000) is None
    assert stage2.lookup(0x8000_2000) == (0x4000_2000, RW)
    stage2.map(0x8000_1000, 0x4030_0000, 0x1000, RW)
    assert stage2.lookup(0x8000_1008) == (0x4030_0008, RW)
