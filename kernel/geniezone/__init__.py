"""The GenieZone host driver (drivers/virt/geniezone): /dev/gzvm, VMs, vCPUs, irqfd, ioeventfd."""
