"""The bundled guest images are exactly what their sources build to."""

from vmm.guests import GUESTS, build, image


def test_every_image_rebuilds_byte_identical(tmp_path):
    build.build(tmp_path)
    for name in GUESTS:
        built = (tmp_path / f"{name}.elf").read_bytes()
        assert built == image(name), f"{name}.elf differs: run python -m vmm.guests.build"
