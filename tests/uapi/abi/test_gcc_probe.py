"""ABI check (a): gcc compiles each header and agrees with the cffi model.

The probe program prints sizeof/_Alignof of every record, offsetof/sizeof
of every field path, and the value of every constant and ioctl macro that
libclang finds in the header; every one must equal what cffi computed from
the same header's text.
"""

import pytest

from uapi.abi import clang, gcc
from uapi.abi.model import from_header
from uapi.linux import gunyah, gunyah_ack, gzvm

MODULES = [pytest.param(m, id=m.HEADER.name) for m in (gunyah, gunyah_ack, gzvm)]


def _header_path(module):
    return module.__file__.replace(".py", ".h")


@pytest.fixture(params=MODULES, scope="module")
def pair(request):
    module = request.param
    path = _header_path(module)
    return gcc.measure(path, clang.list_header(path)), from_header(module.HEADER)


def test_every_record_and_field_agrees(pair):
    measured, model = pair
    assert measured.records == model.records
    assert sum(len(r.fields) for r in model.records.values()) > len(model.records)


def test_every_constant_and_ioctl_agrees(pair):
    measured, model = pair
    assert measured.constants == model.values()
    assert set(model.ioctls) <= set(measured.constants)


def test_a_macro_that_is_not_a_number_is_dropped_not_fatal(tmp_path):
    h = tmp_path / "odd.h"
    h.write_text("#define ODD_ATTR __attribute__((unused))\n#define ODD_N 3\n")
    abi = gcc.measure(str(h), clang.list_header(str(h)))
    assert abi.constants == {"ODD_N": 3}
