"""ABI check (c): ctypeslib2's clang2py agrees with cffi on every layout.

clang2py runs in a child process (it configures libclang at import), on the
library of the libclang wheel, for arm64 with the bundled compiler's include
directories; its ctypes classes are walked field by field
and compared with the cffi model, and its enum and macro constants with the
header's constants.
"""

import ctypes
import os
import subprocess
import sys

import pytest

from uapi.abi.clang import Compiler, compiler_include_dirs, library_file
from uapi.abi.model import from_header
from uapi.linux import gunyah, gunyah_ack, gzvm

MODULES = [pytest.param(m, id=m.HEADER.name) for m in (gunyah, gunyah_ack, gzvm)]


def _clang2py(header: str) -> dict:
    cc = Compiler.bundled()
    args = " ".join(["-nostdinc", *(f"-isystem{d}" for d in compiler_include_dirs(cc))])
    env = {**os.environ, "CLANG_LIBRARY_PATH": library_file()}
    code = "import sys; from ctypeslib.clang2py import main; sys.exit(main())"
    options = ["-k", "emsu", "--target", cc.target, f"--clang-args={args}"]
    out = subprocess.run(
        [sys.executable, "-c", code, header, *options],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    namespace: dict = {}
    exec(compile(out, f"clang2py({header})", "exec"), namespace)
    return namespace


def _walk(cls, base: int, prefix: str, out: dict) -> None:
    anonymous = getattr(cls, "_anonymous_", ())
    for name, ftype, *_ in cls._fields_:
        if name.startswith("PADDING"):
            continue
        desc = getattr(cls, name)
        if name in anonymous:
            _walk(ftype, base + desc.offset, prefix, out)
            continue
        out[prefix + name] = (base + desc.offset, desc.size)
        if isinstance(ftype, type) and issubclass(ftype, ctypes.Structure | ctypes.Union):
            _walk(ftype, base + desc.offset, f"{prefix}{name}.", out)


@pytest.fixture(params=MODULES, scope="module")
def generated(request):
    module = request.param
    return _clang2py(module.__file__.replace(".py", ".h")), from_header(module.HEADER)


def test_every_record_size_and_field_offset_agrees(generated):
    namespace, model = generated
    for name, record in model.records.items():
        cls = namespace[name.replace(" ", "_")]
        assert ctypes.sizeof(cls) == record.size, name
        layout: dict = {}
        _walk(cls, 0, "", layout)
        assert layout == {p: (f.offset, f.size) for p, f in record.fields.items()}, name


def test_constants_agree(generated):
    namespace, model = generated
    seen = {k: namespace[k] for k in model.constants if isinstance(namespace.get(k), int)}
    assert seen == {k: model.constants[k] for k in seen}
    assert len(seen) >= len(model.constants) * 3 // 4
