"""uapi.header: the mechanical rules that turn header text into cffi."""

import pytest

from uapi.header import HeaderError, split


def test_defines_ioctls_and_declarations_are_told_apart():
    decls, defines, ioctls = split(
        "#ifndef X_H\n#define X_H\n"
        "#define T 'G' /* type */\n#define N 8u\n#define BIT (1UL << 4)\n"
        "#define F(a, b) ((a) << (b))\n"
        "#define OP _IOW(T, 0x9, struct s)\n#define Q \\\n\t_IO(T, 3)\n"
        "struct s { int a; };\n#endif\n"
    )
    assert defines == {"T": 0x47, "N": 8, "BIT": 0x10}
    assert [(d.name, d.macro, d.type, d.nr, d.argtype) for d in ioctls] == [
        ("OP", "_IOW", 0x47, 9, "struct s"),
        ("Q", "_IO", 0x47, 3, None),
    ]
    assert "struct s { int a; };" in decls
    assert "#" not in decls


@pytest.mark.parametrize(
    "line",
    ["#define X (A | B)", "#define X _IOW(T, 1)", "#define X _IO(UNKNOWN, 1)"],
)
def test_a_define_the_rules_cannot_load_is_an_error(line):
    with pytest.raises(HeaderError):
        split(line + "\n")
