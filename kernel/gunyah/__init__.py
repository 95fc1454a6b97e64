"""drivers/virt/gunyah: the Gunyah drivers of the host kernel."""
