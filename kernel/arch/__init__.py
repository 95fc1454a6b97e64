"""Architecture code of the host kernel: the only door to the hypervisor."""
