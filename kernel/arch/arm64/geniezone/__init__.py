"""GenieZone's arm64 part of the driver (arch/arm64/geniezone): the hypercalls to EL2."""
