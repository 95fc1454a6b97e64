"""Probe, /dev/gzvm and the error space of spec §2 (kernel/geniezone/gzvm_main.py,
kernel/include/linux/gzvm_drv.py, kernel/arch/arm64/geniezone/hvc.py)."""

import errno

import pytest

import kernel
from hyp.platform import boot_firmware
from kernel.arch.arm64.geniezone.hvc import GzvmFunc, gzvm_hfn_id
from kernel.geniezone.gzvm_main import GzvmDriver
from kernel.include.linux.gzvm_drv import GzvmError, gzvm_err_to_errno


def test_function_ids_are_smc64_fast_calls_of_owner_59():
    assert gzvm_hfn_id(GzvmFunc.CREATE_VM) == 0xFB00_1000
    assert gzvm_hfn_id(GzvmFunc.RUN) == 0xFB00_1005
    assert gzvm_hfn_id(GzvmFunc.GET_STATISTICS) == 0xFB00_1013


@pytest.mark.parametrize(
    ("status", "err"),
    [
        (GzvmError.NO_ERROR, 0),
        (GzvmError.ERR_NO_MEMORY, errno.ENOMEM),
        (GzvmError.ERR_INVALID_ARGS, errno.EINVAL),
        (GzvmError.ERR_NOT_SUPPORTED, errno.EOPNOTSUPP),
        (GzvmError.ERR_NOT_IMPLEMENTED, errno.EOPNOTSUPP),
        (GzvmError.ERR_BUSY, errno.EAGAIN),
        (GzvmError.ERR_FAULT, errno.EFAULT),
        (-1, errno.EINVAL),
        (12345, errno.EINVAL),
    ],
)
def test_gzvm_err_to_errno(status, err):
    assert gzvm_err_to_errno(status) == err


def test_boot_gives_dev_gzvm_and_no_gunyah():
    lines = []
    host = kernel.boot(dram_size=1 << 30, hypervisor="geniezone", trace=lines.append)
    try:
        assert host.gunyah is None and host.gzvm is host.drivers
        assert host.gzvm.hyp_version  # PROBE's answer
        host.close(host.open("/dev/gzvm"))
        with pytest.raises(OSError) as e:
            host.open("/dev/gunyah")
        assert e.value.errno == errno.ENOENT
        dev = host.open("/dev/gzvm")
        host.close(host.ioctl(dev, 0x9201, 0))
        host.close(dev)
        assert any("GZVM_CREATE_VM" in line for line in lines)
    finally:
        host.shutdown()


@pytest.mark.parametrize("kwargs", [{"rm_policy": "retail"}, {"faults": {}}])
def test_gunyah_only_options_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="no Resource Manager"):
        kernel.boot(hypervisor="geniezone", **kwargs)


def test_probe_on_a_machine_without_geniezone_is_enodev():
    """The gzvm driver on a Gunyah SoC: no "mediatek,geniezone" node to bind to."""
    firmware = boot_firmware(1 << 30)
    try:
        with pytest.raises(OSError) as e:
            GzvmDriver.probe(firmware)
        assert e.value.errno == errno.ENODEV and "mediatek,geniezone" in e.value.strerror
    finally:
        firmware.shutdown()
