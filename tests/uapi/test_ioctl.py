"""uapi.ioctl: the asm-generic encoding and its limits."""

import pytest

from uapi.ioctl import _IO, _IOR, _IOW, _IOWR, IoctlFields


def test_encoding_matches_asm_generic():
    assert _IO(0x47, 0x3) == 0x4703
    assert _IOW(0x47, 0x9, 32) == 0x40204709
    assert _IOR(0x47, 0x1, 8) == 0x80084701
    assert _IOWR(0x92, 0xE0, 48) == 0xC03092E0


def test_decode_round_trips():
    f = IoctlFields.decode(0xC03092E0)
    assert (f.dir, f.type, f.nr, f.size) == (3, 0x92, 0xE0, 48)


@pytest.mark.parametrize(("type_", "nr", "size"), [(0x100, 0, 0), (0, 0x100, 0), (0, 0, 1 << 14)])
def test_fields_that_do_not_fit_are_refused(type_, nr, size):
    with pytest.raises(ValueError, match=r"out of range|does not fit"):
        _IOW(type_, nr, size)
