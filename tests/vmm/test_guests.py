"""The bundled guest images are exactly what their sources build to."""

import shutil
import subprocess
from pathlib import Path

from vmm.guests import GUESTS, image

GUESTS_DIR = Path(__file__).parents[2] / "vmm" / "guests"


def test_every_image_rebuilds_byte_identical(tmp_path):
    for path in GUESTS_DIR.iterdir():
        if path.suffix in (".S", ".c", ".ld") or path.name == "Makefile":
            shutil.copy(path, tmp_path)
    subprocess.run(["make", "-s", "-C", str(tmp_path)], check=True, timeout=120)
    for name in GUESTS:
        built = (tmp_path / f"{name}.elf").read_bytes()
        assert built == image(name), f"{name}.elf differs from its source: run make -C vmm/guests"
