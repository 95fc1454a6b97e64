"""Guest images: an AArch64 ELF (its PT_LOAD segments, by physical address), an arm64
Linux ``Image``, or a raw image.

A raw image is placed at the start of RAM and entered there. An arm64
``Image`` (Documentation/arm64/booting.rst: a 64-byte header with
text_offset at 8, image_size at 16 and the magic ``ARM\x64`` at 0x38) is
placed ``text_offset`` bytes above a 2 MiB aligned base (the start of RAM,
which the VMM aligns), takes ``image_size`` bytes (its BSS included; a
header of image_size 0 is a kernel older than 3.17, whose text_offset is
0x80000) and is entered at its first byte. Every error
is an :class:`ImageError` with one line saying what is wrong: an empty,
text or unreadable file, an ELF for another machine or class, a segment outside
RAM, an image that does not fit in the memory given.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"
ARM64_MAGIC, ARM64_MAGIC_OFFSET = b"ARM\x64", 0x38
ARM64_HEADER = struct.Struct("<8xQQ")  # after code0 and code1: text_offset, image_size
ARM64_ALIGN = 2 << 20
ARM64_OLD_TEXT_OFFSET = 0x80000


class ImageError(ValueError):
    pass


@dataclass
class Image:
    segments: list[tuple[int, bytes, int]]  # guest physical address, file bytes, memory size
    entry: int

    @property
    def end(self) -> int:
        return max(addr + memsz for addr, _, memsz in self.segments)


def load_image(data: bytes, ram_base: int, ram_size: int, name: str = "image") -> Image:
    if not data:
        raise ImageError(f"{name}: empty file")
    if _looks_like_text(data):
        raise ImageError(f"{name}: a text file, not an ELF or raw image")
    if data[:4] == ELF_MAGIC:
        image = _elf(data, name)
    elif is_arm64_image(data):
        image = _arm64(data, ram_base)
    else:
        image = Image([(ram_base, data, len(data))], ram_base)
    for addr, _, memsz in image.segments:
        if addr < ram_base or addr + memsz > ram_base + ram_size:
            raise ImageError(
                f"{name}: {addr:#x}+{memsz:#x} does not fit in RAM {ram_base:#x}+{ram_size:#x}"
                " (more --mem?)"
            )
    return image


def is_arm64_image(data: bytes) -> bool:
    return data[ARM64_MAGIC_OFFSET : ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC


def _arm64(data: bytes, ram_base: int) -> Image:
    text_offset, image_size = ARM64_HEADER.unpack_from(data)
    if image_size == 0:
        text_offset, image_size = ARM64_OLD_TEXT_OFFSET, len(data)
    base = -(-ram_base // ARM64_ALIGN) * ARM64_ALIGN + text_offset
    return Image([(base, data, max(image_size, len(data)))], base)


def _looks_like_text(data: bytes) -> bool:
    """Code and data have bytes no text has (a raw image starting with UTF-8 text is rare)."""
    try:
        text = data[:4096].decode()
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def _elf(data: bytes, name: str) -> Image:
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.get_machine_arch() != "AArch64" or elf.elfclass != 64:
            raise ImageError(f"{name}: not an AArch64 ELF64 ({elf.get_machine_arch()})")
        segments = [
            (seg["p_paddr"], seg.data(), seg["p_memsz"])
            for seg in elf.iter_segments()
            if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]
        ]
        entry = elf["e_entry"]
    except (ELFError, OSError, ValueError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{name}: unreadable ELF: {e}") from None
    if not segments:
        raise ImageError(f"{name}: ELF has nothing to load")
    return Image(segments, entry)
