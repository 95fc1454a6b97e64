"""The simulated SoC: DRAM, AArch64 cores, the GICv3 register model, the generic timer."""
