"""uapi.abi.check: headers that differ from a profile, and why it matters.

Each variant header is the v16 header with one thing changed, the way a
stale or hand-edited copy in a VMM's tree differs.
"""

import re
from pathlib import Path

import pytest

from uapi.abi.check import DIFFER, NO_GENERATION, check
from uapi.abi.clang import AbiInputError

LINUX = Path(__file__).parents[3] / "uapi" / "linux"
V16 = (LINUX / "gunyah.h").read_text()
ACK = (LINUX / "gunyah_ack.h").read_text()


def variant(tmp_path, old, new, name="gunyah.h"):
    assert old in V16
    path = tmp_path / name
    path.write_text(V16.replace(old, new))
    return str(path)


def differing(report):
    return {f.name: f for f in report.findings if f.status == DIFFER}


def test_our_headers_agree_with_their_own_profiles():
    for name, profile in (("gunyah.h", "v16"), ("gunyah_ack.h", "ack"), ("gzvm.h", "gzvm")):
        report = check(str(LINUX / name), profile)
        assert report.exit_code == 0, name
        assert report.closest == profile


def test_android_flag_layout_against_v16_names_the_conflict():
    report = check(str(LINUX / "gunyah_ack.h"), "v16")
    why = differing(report)["GUNYAH_MEM_ALLOW_READ"].why
    assert why == (
        "GUNYAH_MEM_ALLOW_READ is 0x1 here and 0x10 in v16: this header has the ack layout; "
        "a VMM built with it asks a v16 kernel for GUNYAH_MEM_FORCE_LEND when it means "
        "GUNYAH_MEM_ALLOW_READ"
    )
    assert report.exit_code == 1
    assert report.closest == "ack"


def test_a_missing_field_is_a_difference(tmp_path):
    path = variant(
        tmp_path, "\t\t\t__u8 is_write;\n\t\t\t__u8 resume_action;\n", "\t\t\t__u8 is_write;\n"
    )
    diff = differing(check(path, "v16"))
    assert set(diff) == {"struct gunyah_vcpu_run.mmio.resume_action"}
    assert "missing here" in diff["struct gunyah_vcpu_run.mmio.resume_action"].why


def test_swapped_fields_give_offsets_and_explain(tmp_path):
    path = variant(
        tmp_path,
        "\t__u32 flags;\n\t__u32 guest_mem_fd;\n\t__u64 offset;",
        "\t__u32 guest_mem_fd;\n\t__u32 flags;\n\t__u64 offset;",
    )
    diff = differing(check(path, "v16"))
    assert set(diff) == {
        "struct gunyah_map_mem_args.flags",
        "struct gunyah_map_mem_args.guest_mem_fd",
    }
    assert "offset 12 here" in diff["struct gunyah_map_mem_args.flags"].why


def test_a_grown_struct_changes_its_ioctl_number(tmp_path):
    path = variant(tmp_path, "\t__u64 reserved[6];", "\t__u64 reserved[7];")
    diff = differing(check(path, "v16"))
    assert diff["struct gunyah_create_mem_args"].here == 72
    ioctl = diff["GUNYAH_CREATE_GUEST_MEM"]
    assert (ioctl.here, ioctl.profile) == (0x40484708, 0x40404708)
    assert ioctl.why.endswith("size 0x48 here, 0x40 in v16): a v16 kernel answers ENOTTY")


def test_a_renumbered_ioctl_names_what_the_kernel_runs_instead(tmp_path):
    path = variant(tmp_path, "_IO(GUNYAH_IOCTL_TYPE, 0x3)", "_IO(GUNYAH_IOCTL_TYPE, 0x5)")
    why = differing(check(path, "v16"))["GUNYAH_VM_START"].why
    assert why.endswith("a v16 kernel runs GUNYAH_VCPU_RUN instead")


def test_a_partial_header_is_ok_when_what_it_has_agrees(tmp_path):
    path = tmp_path / "mine.h"
    path.write_text(
        "#include <linux/ioctl.h>\n#include <linux/types.h>\n"
        "struct gunyah_fn_desc { __u32 type; __u32 arg_size; __u64 arg; };\n"
        "#define GUNYAH_VM_ADD_FUNCTION _IOW('G', 0x4, struct gunyah_fn_desc)\n"
    )
    report = check(str(path), "v16")
    assert report.exit_code == 0
    assert report.count("match") == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file"),
        ("def main():\n    return 1\n", "not a C header"),
        ("", "declares no struct, enum or macro"),
        ("#include <no/such/header.h>\n", "not a C header"),
    ],
)
def test_bad_input_is_an_input_error(tmp_path, text, message):
    path = tmp_path / "input.h"
    if text is not None:
        path.write_text(text)
    with pytest.raises(AbiInputError, match=message):
        check(str(path), "v16")


def test_upstream_names_with_the_android_flag_layout_are_mixed(tmp_path):
    flags = re.compile(r"enum gunyah_map_flags \{.*?\};", re.S)
    path = tmp_path / "android-6.6.h"
    path.write_text(V16.replace(flags.search(V16)[0], flags.search(ACK)[0]))
    report = check(str(path), "ack")
    assert report.exit_code == 0
    assert report.generation == "mixed: 41 from v16, 7 from ack"
    assert report.unknown == []


def test_a_vendor_header_sharing_no_name_is_no_known_generation(tmp_path):
    path = tmp_path / "qcom.h"
    path.write_text(
        "#include <linux/ioctl.h>\n#define QC_IOCTL_TYPE 0xB2\n"
        "struct qc_vm_args { unsigned long long addr; };\n"
        "#define QC_CREATE_VM _IOW(QC_IOCTL_TYPE, 0x1, struct qc_vm_args)\n"
    )
    report = check(str(path), "v16")
    assert (report.generation, report.closest, report.exit_code) == (NO_GENERATION, None, 1)
    assert report.unknown == ["QC_CREATE_VM", "QC_IOCTL_TYPE", "struct qc_vm_args"]


def test_names_no_profile_knows_are_listed(tmp_path):
    path = tmp_path / "extended.h"
    path.write_text(V16.replace("#endif", "#define GUNYAH_VM_FUTURE 0x99\n#endif"))
    report = check(str(path), "v16")
    assert (report.generation, report.exit_code, report.unknown) == ("v16", 0, ["GUNYAH_VM_FUTURE"])


def test_v17_is_v16():
    report = check(str(LINUX / "gunyah.h"), "v17")
    assert (report.profile, report.exit_code) == ("v16", 0)


def test_a_directory_is_an_input_error(tmp_path):
    with pytest.raises(AbiInputError, match=f"^{tmp_path}: is a directory$"):
        check(str(tmp_path), "v16")
