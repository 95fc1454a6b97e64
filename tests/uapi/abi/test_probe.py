"""ABI check (a): a C compiler measures each header, and cffi agrees.

The probe holds sizeof/_Alignof of every record, offsetof/sizeof of every
field path, and the value of every constant and ioctl macro that libclang
finds in the header, read out of the compiled object. The bundled compiler
measures for arm64 (the ABI of these headers) and pins every number to what
cffi computed from the same header's text. The host's gcc, where there is
one, must measure the same numbers; where there is none those tests say so
in the summary.
"""

import shutil

import pytest

from uapi.abi import clang, probe
from uapi.abi.clang import Compiler
from uapi.abi.model import from_header
from uapi.linux import gunyah, gunyah_ack, gzvm

MODULES = [pytest.param(m, id=m.HEADER.name) for m in (gunyah, gunyah_ack, gzvm)]
ARM64 = Compiler.bundled()
ODD = (
    '#define ODD_ATTR __attribute__((unused))\n#define ODD_NAME "odd"\n'
    "#define ODD_N 3\n#define ODD_NEG (-2)\n"
)


def _measure(path, cc):
    return probe.measure(path, clang.list_header(path, cc), cc)


@pytest.fixture(scope="module")
def host_gcc():
    """The host's gcc; a visible skip where there is none."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc on this host: agreement with the host's gcc not checked")
    return Compiler.user(gcc)


@pytest.fixture(params=MODULES, scope="module")
def pair(request):
    module = request.param
    path = module.__file__.replace(".py", ".h")
    return path, _measure(path, ARM64), from_header(module.HEADER)


def test_every_record_and_field_agrees(pair):
    _, measured, model = pair
    assert measured.records == model.records
    assert sum(len(r.fields) for r in model.records.values()) > len(model.records)


def test_every_constant_and_ioctl_agrees(pair):
    _, measured, model = pair
    assert measured.constants == model.values()
    assert set(model.ioctls) <= set(measured.constants)


def test_a_macro_that_is_not_a_number_is_dropped_not_fatal(tmp_path):
    h = tmp_path / "odd.h"
    h.write_text(ODD)
    assert _measure(str(h), ARM64).constants == {"ODD_N": 3, "ODD_NEG": -2}


def test_another_target_measures_its_own_abi(tmp_path):
    h = tmp_path / "long.h"
    h.write_text("struct lp { long l; void *p; };\n#define LP_SIZE sizeof(struct lp)\n")
    lp64 = _measure(str(h), ARM64)
    ilp32 = _measure(str(h), Compiler.bundled("arm-linux-gnueabi"))
    assert (lp64.constants["LP_SIZE"], ilp32.constants["LP_SIZE"]) == (16, 8)


def test_the_host_gcc_measures_the_same(pair, host_gcc):
    path, measured, _ = pair
    assert _measure(path, host_gcc) == measured


def test_the_host_gcc_drops_the_same_macros(tmp_path, host_gcc):
    h = tmp_path / "odd.h"
    h.write_text(ODD)
    assert _measure(str(h), host_gcc).constants == {"ODD_N": 3, "ODD_NEG": -2}
