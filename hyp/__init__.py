"""Everything below EL1 of the host: EL2 hypervisors, the Resource Manager VM, the SoC."""
