"""MediaTek GenieZone at EL2, built on :mod:`hyp.arch`: its host door, VMs, vCPUs and vGIC."""
