"""arch/arm64: the SMCCC conduit and the host's interrupts."""
