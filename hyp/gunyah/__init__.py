"""The Gunyah EL2 hypervisor: objects, capabilities, memory, vCPUs, IPC, vGIC, hypercalls."""
