"""The board's physical memory map and the fixed numbers of its devices.

Host physical addresses (PA) below are the SoC's; guest IPAs of the vGIC are
what Gunyah gives every VM, mirroring the QEMU "virt" layout that guest
kernels know.
"""

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

DRAM_BASE = 0x8000_0000
DRAM_SIZE = 8 << 30

# Carved from the top of DRAM for the hypervisor's own use (stage-2 tables).
HYP_POOL_SIZE = 64 << 20

# Guest IPA of the vGIC distributor and redistributors (64 KiB frames).
GICD_BASE = 0x0800_0000
GICD_SIZE = 0x1_0000
GICR_BASE = 0x080A_0000
GICR_STRIDE = 0x2_0000

# Generic timer: the counter frequency and the PPIs of the EL1 timers.
CNTFRQ = 19_200_000
PPI_VTIMER = 27
PPI_PTIMER = 30

# Interrupt id ranges of the GIC architecture.
SGI_COUNT = 16
PPI_BASE = 16
SPI_BASE = 32
SPI_LIMIT = 1020
SPECIAL_INTID_NONE = 1023
