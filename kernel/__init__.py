"""The host Linux kernel model: syscalls, files, eventfd and the Gunyah drivers."""
