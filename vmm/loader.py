"""Guest images: an AArch64 ELF (its PT_LOAD segments, by physical address) or a raw image.

A raw image is placed at the start of RAM and entered there. Every error
is an :class:`ImageError` with one line saying what is wrong: an empty,
text or unreadable file, an ELF for another machine or class, a segment outside
RAM, an image that does not fit in the memory given.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"


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
    image = (
        _elf(data, name)
        if data[:4] == ELF_MAGIC
        else Image([(ram_base, data, len(data))], ram_base)
    )
    for addr, _, memsz in image.segments:
        if addr < ram_base or addr + memsz > ram_base + ram_size:
            raise ImageError(
                f"{name}: {addr:#x}+{memsz:#x} does not fit in RAM {ram_base:#x}+{ram_size:#x}"
                " (more --mem?)"
            )
    return image


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
