"""memdb: ownership changes only by compare-and-swap over whole ranges."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyp.gunyah.errors import Error, HypError
from hyp.gunyah.memdb import MemDb

A, B, C = object(), object(), object()
PAGE = 0x1000


def test_claim_and_move():
    db = MemDb()
    db.update(0x10000, 0x4000, A, None)
    assert db.owner(0x10000) is A and db.owner(0x13FFF) is A and db.owner(0x14000) is None
    db.update(0x11000, 0x1000, B, A)
    assert [o for _, _, o in db.ranges()] == [A, B, A]
    db.update(0x11000, 0x1000, A, B)
    assert db.ranges() == [(0x10000, 0x14000, A)]  # merged again


def test_swap_fails_unless_every_page_has_the_expected_owner():
    db = MemDb()
    db.update(0, 0x3000, A, None)
    db.update(0x1000, 0x1000, B, A)
    with pytest.raises(HypError) as e:
        db.update(0, 0x3000, C, A)
    assert e.value.error == Error.MEMDB_NOT_OWNER
    assert db.owner(0) is A and db.owner(0x1000) is B  # nothing changed
    with pytest.raises(HypError):
        db.update(0x2000, 0x2000, C, A)  # runs past A's range
    with pytest.raises(HypError):
        db.update(0, 0x1000, C, None)  # already owned


@given(
    st.lists(
        st.tuples(st.integers(0, 15), st.integers(1, 4), st.sampled_from([A, B, C])), max_size=30
    )
)
def test_matches_a_page_map(ops):
    db, pages = MemDb(), {}
    db.update(0, 20 * PAGE, A, None)
    pages = dict.fromkeys(range(20), A)
    for start, count, new in ops:
        span = range(start, start + count)
        expected = pages[start]
        ok = all(pages[p] is expected for p in span)
        try:
            db.update(start * PAGE, count * PAGE, new, expected)
        except HypError:
            assert not ok
        else:
            assert ok
            pages.update(dict.fromkeys(span, new))
        assert all(db.owner(p * PAGE) is pages[p] for p in range(20))
