"""What every Arm64 EL2 hypervisor on the simulated SoC needs, written once.

Stage-2 tables, the vCPU run loop over a unicorn core, trap dispatch,
exception injection, the vGIC, the virtual timer, PSCI, SMCCC dispatch and
the vCPU scheduler. A hypervisor (hyp/gunyah, later hyp/geniezone) builds
on these and supplies the hooks each module documents; nothing here
imports a hypervisor.
"""
