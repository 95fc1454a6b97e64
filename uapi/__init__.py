"""The Linux userspace ABI of Gunyah and GenieZone, loaded from C headers."""
