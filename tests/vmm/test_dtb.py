"""``gunyah-sim dtb``: the devicetree ``run`` loads, written for a native VMM, and its errors."""

import fdt
import pytest

from vmm.cli import main
from vmm.geniezone import GenieZone
from vmm.guests import image
from vmm.gunyah import Gunyah
from vmm.vmm import DTB_ROOM, RAM_BASE, Vmm, VmmConfig


def recording(backend):
    """``backend`` whose VMs keep every (address, bytes) piece the VMM loads into RAM."""

    class Recording(backend):
        loaded: dict[int, bytes] = {}

        def create_vm(self, layout, name):
            vm = super().create_vm(layout, name)
            add_memory = vm.add_memory

            def record(ipa, size, contents=()):
                contents = list(contents)
                Recording.loaded.update(contents)
                add_memory(ipa, size, contents)

            vm.add_memory = record
            return vm

    return Recording


@pytest.mark.parametrize(
    ("backend", "hypervisor", "fixture"),
    [(Gunyah, "gunyah", "host"), (GenieZone, "geniezone", "gzhost")],
)
def test_the_dtb_is_the_one_run_loads_at_the_end_of_ram(
    backend, hypervisor, fixture, request, tmp_path
):
    out = tmp_path / "vm.dtb"
    args = ["--vcpus", "2", "--mem", "32M", "--cmdline", "quiet"]
    assert main(["dtb", "hello", "--hypervisor", hypervisor, *args, "-o", str(out)]) == 0
    host = request.getfixturevalue(fixture)
    config = VmmConfig(image("hello"), "hello", 2, 32 << 20, "quiet")
    backend = recording(backend)
    report = Vmm(host, config, hypervisor=backend).run()
    assert report.clean, report.lines()
    assert backend.loaded[RAM_BASE + (32 << 20) - DTB_ROOM] == out.read_bytes()


def test_the_gunyah_dtb_carries_the_vm_config_and_the_arguments(capsysbinary):
    assert main(["dtb", "--vcpus", "3", "--mem", "16M", "--cmdline", "hi there", "-o", "-"]) == 0
    tree = fdt.parse_dtb(capsysbinary.readouterr().out)
    assert tree.get_property("image-name", "/gunyah-vm-config").value == "hello"
    assert tree.get_property("size-max", "/gunyah-vm-config/memory").data == [0, 16 << 20]
    assert tree.get_property("label", "/gunyah-vm-config/vdevices/bell-1").value == 1
    assert [node.name for node in tree.get_node("/cpus").nodes] == ["cpu@0", "cpu@1", "cpu@2"]
    assert tree.get_property("bootargs", "/chosen").value == "hi there"


def test_the_geniezone_dtb_has_the_gic_and_no_vm_config(capsysbinary):
    assert main(["dtb", "--hypervisor", "geniezone", "--vcpus", "2", "-o", "-"]) == 0
    tree = fdt.parse_dtb(capsysbinary.readouterr().out)
    assert not tree.exist_node("/gunyah-vm-config")
    gic = tree.get_node("/interrupt-controller@3fff0000")
    # The distributor, then one 128 KiB redistributor frame per vCPU just below it.
    assert gic.get_property("reg").data == [0, 0x3FFF0000, 0, 0x10000, 0, 0x3FFB0000, 0, 0x40000]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.elf", "-o", "-"], "missing.elf: no such file, and not a bundled guest"),
        (["--vcpus", "0", "-o", "-"], "--vcpus 0: between 1 and 64 on gunyah"),
        (["--hypervisor", "geniezone", "--vcpus", "9", "-o", "-"], "between 1 and 8"),
        (["--mem", "lots", "-o", "-"], "--mem 'lots': not a size"),
        (["-o", "/nonexistent/vm.dtb"], "/nonexistent/vm.dtb: No such file or directory"),
        (["/etc/passwd", "-o", "-"], "passwd: a text file, not an ELF or raw image"),  # as run says
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(["dtb", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("gunyah-sim dtb: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_the_output_is_required(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["dtb", "hello"])
    assert exited.value.code == 2
    assert "-o/--output" in capsys.readouterr().err
