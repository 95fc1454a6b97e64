"""The Gunyah EL2 hypervisor on hyp.arch: objects, capabilities, memory ownership,
thread and VIC objects, IPC, hypercalls."""
