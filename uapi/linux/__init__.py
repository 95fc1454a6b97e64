"""include/uapi/linux: one C header and one Python module per UAPI generation."""
