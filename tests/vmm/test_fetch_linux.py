"""fetch-linux's parts: the .deb (ar) reader, the data archive, the Image unwrapping,
the initramfs, and its one-line errors (apt-get missing, nothing fetched)."""

import gzip
import io
import os
import stat
import struct
import tarfile

import pytest

from vmm import cli, fetch_linux
from vmm.fetch_linux import FetchError


def ar_member(name: bytes, data: bytes) -> bytes:
    # ar(5): name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n"; data 2-byte aligned
    head = name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8)
    head += str(len(data)).encode().ljust(10) + b"`\n"
    return head + data + b"\n" * (len(data) & 1)


def tar_xz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:xz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def arm64_image(size=0x100) -> bytes:
    data = bytearray(size)
    data[0x38:0x3C] = b"ARM\x64"
    return bytes(data)


def deb(data_tar: bytes) -> bytes:
    return (
        b"!<arch>\n"
        + ar_member(b"debian-binary", b"2.0\n")
        + ar_member(b"control.tar.xz", b"x")  # odd size: the next member is after a pad
        + ar_member(b"data.tar.xz", data_tar)
    )


def test_the_kernel_is_found_in_a_debs_data_archive():
    payload = tar_xz({"./boot/config-6.1": b"cfg", "./boot/vmlinuz-6.1.0-9-cloud-arm64": b"K"})
    data = fetch_linux.deb_member(deb(payload), "data.tar")
    assert data == payload
    assert fetch_linux.data_file(data, "./boot/vmlinuz-") == (
        "./boot/vmlinuz-6.1.0-9-cloud-arm64",
        b"K",
    )


@pytest.mark.parametrize(
    "blob, match",
    [
        (b"PK\x03\x04", "no ar archive"),
        (b"!<arch>\n" + ar_member(b"debian-binary", b"2.0\n"), "without data.tar"),
    ],
)
def test_a_bad_deb_is_one_line(blob, match):
    with pytest.raises(FetchError, match=match):
        fetch_linux.deb_member(blob, "data.tar")


def test_a_missing_file_in_the_data_archive():
    with pytest.raises(FetchError, match=r"no \./bin/busybox\*"):
        fetch_linux.data_file(tar_xz({"./usr/x": b""}), "./bin/busybox")
    with pytest.raises(FetchError, match="unreadable data archive"):
        fetch_linux.data_file(b"\xfd7zXZ\0garbage", "./bin/busybox")


def test_an_image_is_taken_as_it_is_or_gunzipped_or_out_of_zboot():
    image = arm64_image()
    assert fetch_linux.image(image) == image
    assert fetch_linux.image(gzip.compress(image)) == image
    payload = gzip.compress(image)
    # zboot-header.S: "MZ", 2 bytes, "zimg", payload offset, payload size, 8 bytes,
    # the compression type's name (NUL padded)
    header = b"MZ\0\0zimg" + struct.pack("<II", 0x40, len(payload)) + bytes(8) + b"gzip"
    zboot = header.ljust(0x40, b"\0") + payload
    assert fetch_linux.image(zboot) == image


def test_what_is_not_an_arm64_image():
    with pytest.raises(FetchError, match="not an arm64 Image"):
        fetch_linux.image(bytes(0x100))
    with pytest.raises(FetchError, match="corrupt gzip"):
        fetch_linux.image(b"\x1f\x8b" + bytes(20))
    zstd = b"MZ\0\0zimg" + struct.pack("<II", 0x40, 0) + bytes(8) + b"zstd"
    with pytest.raises(FetchError, match="zstd, not gzip"):
        fetch_linux.image(zstd.ljust(0x40, b"\0"))


def newc_entries(blob: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev), read back by the format's rules."""
    out, off = {}, 0
    while True:
        fields = [int(blob[off + 6 + 8 * i : off + 14 + 8 * i], 16) for i in range(13)]
        namesize, size = fields[11], fields[6]
        name = blob[off + 110 : off + 110 + namesize - 1].decode()
        data_at = off + 110 + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return out
        out[name] = (fields[1], blob[data_at : data_at + size], (fields[9], fields[10]))
        off = data_at + size + (-size % 4)


def test_the_initramfs_has_busybox_a_console_and_an_init_that_powers_off():
    files = newc_entries(fetch_linux.initramfs(b"\x7fELF busybox"))
    assert files["bin/busybox"][1] == b"\x7fELF busybox"
    mode, _, rdev = files["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    mode, init, _ = files["init"]
    assert stat.S_ISREG(mode) and mode & 0o111
    assert init.startswith(b"#!/bin/busybox sh\n")
    assert b"mount -t proc proc /proc" in init and b"uname -r" in init
    assert init.rstrip().endswith(b"poweroff -f")
    assert stat.S_ISDIR(files["proc"][0])


def test_apt_get_missing_is_one_line(tmp_path):
    with pytest.raises(FetchError, match=r"^nowhere/apt-get not found"):
        fetch_linux.fetch(tmp_path, apt_get="nowhere/apt-get")


def test_the_cli_says_apt_get_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get on it
    assert cli.main(["fetch-linux"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get not found" in err


def test_a_failing_apt_get_is_its_last_line(tmp_path):
    tool = tmp_path / "apt-get"
    tool.write_text("#!/bin/sh\necho 'E: Failed to fetch something' >&2\nexit 100\n")
    os.chmod(tool, 0o755)
    with pytest.raises(FetchError, match=r"update failed: E: Failed to fetch something$"):
        fetch_linux.fetch(tmp_path / "linux", apt_get=str(tool))


def test_nothing_fetched_says_what_to_run(tmp_path):
    with pytest.raises(FetchError, match="run `gunyah-sim fetch-linux` first"):
        fetch_linux.fetched(tmp_path)
