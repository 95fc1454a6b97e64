"""The newc writer against bytes written out by hand from the format's description
(Documentation/driver-api/early-userspace/buffer-format.rst)."""

import pytest

from vmm.initramfs import Entry, newc


def header(ino, mode, nlink, filesize, namesize, rdev=(0, 0)):
    # c_magic, then ino mode uid gid nlink mtime filesize maj min rmaj rmin namesize check
    return (
        "070701"
        + f"{ino:08X}{mode:08X}{0:08X}{0:08X}{nlink:08X}{0:08X}{filesize:08X}"
        + f"{0:08X}{0:08X}{rdev[0]:08X}{rdev[1]:08X}{namesize:08X}00000000"
    ).encode()


TRAILER = header(0, 0, 1, 0, 11) + b"TRAILER!!!\0" + b"\0\0\0"  # 110 + 11 = 121 -> 124


def test_a_directory_a_file_a_symlink_and_a_device_node():
    blob = newc(
        [
            Entry.directory("dev"),
            Entry.file("init", b"hi\n"),
            Entry.symlink("sh", "busybox"),
            Entry.char_device("dev/console", 5, 1),
        ]
    )
    expected = (
        # 110 + "dev\0" = 114, padded to 116; no data
        header(1, 0o040755, 2, 0, 4)
        + b"dev\0"
        + b"\0\0"
        # 110 + "init\0" = 115 -> 116; data 3 -> 4
        + header(2, 0o100755, 1, 3, 5)
        + b"init\0"
        + b"\0"
        + b"hi\n\0"
        # 110 + "sh\0" = 113 -> 116; the target is the data, 7 -> 8
        + header(3, 0o120777, 1, 7, 3)
        + b"sh\0"
        + b"\0\0\0"
        + b"busybox\0"
        # 110 + 12 = 122 -> 124
        + header(4, 0o020600, 1, 0, 12, (5, 1))
        + b"dev/console\0"
        + b"\0\0"
        + TRAILER
    )
    assert blob == expected
    assert len(blob) % 4 == 0


def test_the_empty_archive_is_the_trailer_alone():
    assert newc([]) == TRAILER


def test_every_header_is_110_ascii_bytes_at_a_4_byte_boundary():
    blob = newc([Entry.file("a", b"x" * 5), Entry.file("bb", b"")])
    offsets = [i for i in range(0, len(blob), 2) if blob.startswith(b"070701", i)]
    assert offsets == [0, 120, 236]  # 110+2+8, 110+3+3 (padding)
    assert all(off % 4 == 0 for off in offsets)


@pytest.mark.parametrize("name", ["", "/init", "TRAILER!!!"])
def test_a_bad_name_is_refused(name):
    with pytest.raises(ValueError, match="bad entry name"):
        newc([Entry.file(name, b"")])
