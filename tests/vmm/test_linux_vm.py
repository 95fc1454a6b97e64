"""A Linux VM's parts on the VMM side: the arm64 Image's placement, the DT Linux
needs (timer, PrimeCell clocks, initramfs, the RM's interrupt-parent), the PL011's
interrupt, and the command line's answers."""

import struct

import fdt
import pytest

from hyp.rm import vm_config as rm_vm_config
from vmm import cli
from vmm.devices.pl011 import UARTIMSC, UARTMIS, UARTRIS, Pl011
from vmm.loader import ImageError, load_image
from vmm.vm_config import build_dtb
from vmm.vmm import DTB_ROOM, RAM_BASE, UART_SPI, Vmm, VmmConfig, initrd_addr, layout

MIB = 1 << 20


def arm64_image(text_offset=0, image_size=3 * MIB, length=0x1000) -> bytes:
    # Documentation/arm64/booting.rst: code0, code1, text_offset, image_size, flags,
    # res2..res4, magic "ARM\x64", res5
    header = struct.pack("<IIQQQQQQ4sI", 0x14000010, 0, text_offset, image_size, 0xA, 0, 0, 0,
                         b"ARM\x64", 0)  # fmt: skip
    return header + bytes(length - len(header))


def test_an_image_goes_text_offset_above_a_2mib_aligned_base_with_its_bss():
    image = load_image(arm64_image(text_offset=0x80000), 0x8010_0000, 64 * MIB)
    assert image.entry == 0x8020_0000 + 0x80000
    assert image.segments[0][0] == image.entry and image.segments[0][2] == 3 * MIB


def test_an_image_without_a_size_is_a_pre_3_17_kernel_at_0x80000():
    image = load_image(arm64_image(text_offset=0, image_size=0), RAM_BASE, 64 * MIB)
    assert image.entry == RAM_BASE + 0x80000


def test_an_image_larger_than_ram_is_refused():
    with pytest.raises(ImageError, match="more --mem"):
        load_image(arm64_image(image_size=80 * MIB), RAM_BASE, 64 * MIB)


def linux_dt(config: VmmConfig) -> fdt.FDT:
    return fdt.parse_dtb(build_dtb(layout(config)))


def test_the_linux_dt_has_the_timer_clocks_an_interrupt_and_the_initramfs():
    config = VmmConfig(arm64_image(), vcpus=2, mem=256 * MIB, initrd=b"x" * 5000)
    tree = linux_dt(config)
    timer = tree.get_node("timer")
    assert list(timer.get_property("interrupts").data) == [1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8]
    uart = tree.get_node("pl011@9000000")
    clock = tree.get_node("apb-pclk")
    phandle = clock.get_property("phandle").value
    assert list(uart.get_property("clocks").data) == [phandle, phandle]
    assert list(uart.get_property("clock-names").data) == ["uartclk", "apb_pclk"]
    assert list(uart.get_property("interrupts").data) == [0, UART_SPI, 1]
    chosen = tree.get_node("chosen")
    start = initrd_addr(config)
    assert start % 4096 == 0 and start + 5000 <= RAM_BASE + 256 * MIB - DTB_ROOM
    cells = [list(chosen.get_property(p).data) for p in ("linux,initrd-start", "linux,initrd-end")]
    assert cells == [[0, start], [0, start + 5000]]


def test_other_guests_get_neither_timer_nor_clocks():
    tree = linux_dt(VmmConfig(b"\x00" * 64))
    assert not tree.exist_node("timer") and not tree.exist_node("apb-pclk")
    assert tree.get_node("pl011@9000000").get_property("interrupts") is None


def test_the_rm_gives_its_gic_a_free_phandle_named_by_the_root():
    dtb = build_dtb(layout(VmmConfig(arm64_image(), mem=256 * MIB)))
    gic = {"gicd": (0x3FFF_0000, 0x1_0000), "gicr": (0x3FFD_0000, 0x2_0000)}
    tree = fdt.parse_dtb(rm_vm_config.overlay(dtb, 0x8000, 1, gic, []))
    used = tree.get_node("apb-pclk").get_property("phandle").value
    phandle = tree.get_node("interrupt-controller@3fff0000").get_property("phandle").value
    assert phandle != used
    assert tree.get_property("interrupt-parent").value == phandle


def test_an_initramfs_that_does_not_fit_above_the_kernel():
    config = VmmConfig(arm64_image(image_size=60 * MIB), mem=64 * MIB, initrd=b"x" * (4 * MIB))
    with pytest.raises(ImageError, match="do not fit"):
        Vmm(None, config).run()


def test_the_pl011_interrupts_on_unmasking_and_on_input():
    fired = []
    uart = Pl011(lambda data: None, lambda: fired.append(1))
    assert uart.mmio_read(UARTRIS, 4) == 1 << 5  # TX: the FIFO is always drained
    uart.mmio_write(UARTIMSC, 4, 1 << 5)
    assert fired == [1] and uart.mmio_read(UARTMIS, 4) == 1 << 5
    uart.mmio_write(UARTIMSC, 4, 1 << 5)  # nothing new
    assert fired == [1]
    uart.mmio_write(UARTIMSC, 4, 1 << 4 | 1 << 6)  # RX and RX timeout, nothing waits
    assert fired == [1] and uart.mmio_read(UARTMIS, 4) == 0
    uart.feed(b"a")
    assert fired == [1, 1] and uart.mmio_read(UARTMIS, 4) == 1 << 4 | 1 << 6


def test_run_linux_without_a_kernel_says_to_fetch_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.main(["run", "linux"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run `gunyah-sim fetch-linux` first" in err


def test_an_initrd_needs_a_kernel(tmp_path, capsys):
    (tmp_path / "i").write_bytes(b"x")
    assert cli.main(["run", "--initrd", str(tmp_path / "i")]) == 2
    assert "--initrd needs --kernel" in capsys.readouterr().err
