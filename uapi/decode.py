"""ioctl arguments decoded by field, for strace-style traces.

No C file mirrors this: it is what strace's ioctl decoders do, driven by the
cffi model of each header, so a struct is shown with the header's own field
names: ``GUNYAH_VM_MAP_MEM{guest_addr=0x80000000, flags=LEND|RWX, ...}``.

:func:`describe` takes a request number, its argument and
``read(address, size) -> bytes`` (the caller's copy_from_user) and returns
the argument as text, or None when the request is not one of a known
header's or carries no struct. Flag and enum fields are shown by their
names without the common prefix, bits no name covers in hex. Addresses,
offsets and sizes are hex, other integers decimal; all-zero padding is left
out. A field that is a user pointer to another struct
(``gunyah_fn_desc.arg``) is followed, as the driver follows it. A read
that fails shows ``{?}`` (the ioctl's own EFAULT follows).
"""

from __future__ import annotations

from uapi.linux import gunyah as gh
from uapi.linux import gzvm as gz

_HEX_WORDS = ("addr", "offset", "size", "datamatch", "value", "base", "handle")

# (struct, field) -> (header, prefix of the names its bits or values carry, flags?)
_NAMED = {
    ("gunyah_fn_desc", "type"): (gh, "GUNYAH_FN_", False),
    ("gunyah_fn_irqfd_arg", "flags"): (gh, "GUNYAH_IRQFD_FLAGS_", True),
    ("gunyah_fn_ioeventfd_arg", "flags"): (gh, "GUNYAH_IOEVENTFD_FLAGS_", True),
    ("gunyah_create_mem_args", "flags"): (gh, "GHMF_", True),
    ("gzvm_irqfd", "flags"): (gz, "GZVM_IRQFD_FLAG_", True),
    ("gzvm_ioeventfd", "flags"): (gz, "GZVM_IOEVENTFD_FLAG_", True),
    ("gzvm_create_device", "dev_type"): (gz, "GZVM_DEV_TYPE_", False),
}
_FN_ARGS = {  # gunyah_fn_desc.type -> the struct its arg points to
    gh.GUNYAH_FN_VCPU: "struct gunyah_fn_vcpu_arg",
    gh.GUNYAH_FN_IRQFD: "struct gunyah_fn_irqfd_arg",
    gh.GUNYAH_FN_IOEVENTFD: "struct gunyah_fn_ioeventfd_arg",
}
_MAP_ACCESS = {
    gh.GUNYAH_MEM_DEFAULT_ACCESS: "DEFAULT_ACCESS",
    gh.GUNYAH_MEM_FORCE_LEND: "LEND",
    gh.GUNYAH_MEM_FORCE_SHARE: "SHARE",
}


def _argtypes() -> dict[int, tuple[object, str, str]]:
    table = {}
    for header in (gh.HEADER, gz.HEADER):
        for d in header.ioctl_defs:
            table[header.ioctls[d.name]] = (header.ffi, d.name, d.argtype)
    return table


_ARGTYPES = _argtypes()


def ioctl_name(request: int) -> str | None:
    """The header name of ``request`` (v16 Gunyah or GenieZone), or None."""
    known = _ARGTYPES.get(request)
    return known[1] if known else None


def describe(request: int, arg, read) -> str | None:
    """``NAME{field=value, ...}``: the struct ``request`` passes at ``arg``, read by ``read``."""
    known = _ARGTYPES.get(request) if isinstance(request, int) else None
    if known is None or known[2] is None or not known[2].startswith("struct "):
        return None
    ffi, name, argtype = known
    return name + _struct(ffi, argtype, read, arg)


def _struct(ffi, ctype: str, read, address) -> str:
    try:
        data = read(address, ffi.sizeof(ctype))
    except OSError:
        return "{?}"  # strace shows the address; the ioctl's own EFAULT follows
    owner = ffi.new(f"{ctype} *")  # keeps the copy alive while its fields are read
    ffi.memmove(owner, data, len(data))
    value = owner[0]
    tag = ctype.split()[-1]
    shown = []
    for field, ftype in ffi.typeof(ctype).fields:
        v = getattr(value, field)
        if ftype.type.kind == "array":
            if any(v):
                shown.append(f"{field}=[" + ", ".join(f"{x:#x}" for x in v) + "]")
            continue
        shown.append(f"{field}={_field(ffi, tag, field, v, value, read)}")
    return "{" + ", ".join(shown) + "}"


def _field(ffi, tag: str, field: str, v: int, value, read) -> str:
    if (tag, field) == ("gunyah_map_mem_args", "flags"):
        return _map_flags(v)
    if (tag, field) == ("gunyah_fn_desc", "arg") and value.type in _FN_ARGS:
        return _struct(ffi, _FN_ARGS[value.type], read, v)
    if named := _NAMED.get((tag, field)):
        header, prefix, flags = named
        return _flags(header, prefix, v) if flags else _enum(header, prefix, v)
    hex_ = any(w in field for w in _HEX_WORDS) or (tag, field) == ("gzvm_one_reg", "id")
    return f"{v:#x}" if hex_ else str(v)


def _names(header, prefix: str) -> dict[str, int]:
    return {
        k[len(prefix) :]: v
        for k, v in header.HEADER.constants.items()
        if k.startswith(prefix) and isinstance(v, int)
    }


def _enum(header, prefix: str, v: int) -> str:
    return next((n for n, c in _names(header, prefix).items() if c == v), str(v))


def _flags(header, prefix: str, v: int) -> str:
    parts, rest = [], v
    for n, bit in sorted(_names(header, prefix).items(), key=lambda item: item[1]):
        if bit and bit & (bit - 1) == 0 and rest & bit:
            parts.append(n)
            rest &= ~bit
    if rest or not parts:
        parts.append(f"{rest:#x}")
    return "|".join(parts)


def _map_flags(v: int) -> str:
    """struct gunyah_map_mem_args.flags: the access kind, then the rights."""
    access = v & gh.GUNYAH_MEM_ACCESS_MASK
    parts = [_MAP_ACCESS.get(access, f"{access:#x}")]
    perms = v & gh.GUNYAH_MEM_ALLOW_RWX
    if perms == gh.GUNYAH_MEM_ALLOW_RWX:
        parts.append("RWX")
    elif perms:
        rwx = (gh.GUNYAH_MEM_ALLOW_READ, gh.GUNYAH_MEM_ALLOW_WRITE, gh.GUNYAH_MEM_ALLOW_EXEC)
        parts.append("".join(c for c, bit in zip("RWX", rwx, strict=True) if perms & bit))
    if v & gh.GUNYAH_MEM_UNMAP:
        parts.append("UNMAP")
    rest = v & ~(gh.GUNYAH_MEM_ACCESS_MASK | gh.GUNYAH_MEM_ALLOW_RWX | gh.GUNYAH_MEM_UNMAP)
    if rest:
        parts.append(f"{rest:#x}")
    return "|".join(parts)
