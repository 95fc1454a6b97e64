"""Ioctl fuzz campaigns (``gunyah-sim fuzz``) and the state machines the CI tests run.

:mod:`vmm.fuzz.check` holds the properties, :mod:`vmm.fuzz.leaks` what a host
holds, :mod:`vmm.fuzz.vms` the VMs built right; none of them needs Hypothesis,
so a reproducer script imports them alone. :mod:`vmm.fuzz.gunyah` and
:mod:`vmm.fuzz.gzvm` are the state machines, :mod:`vmm.fuzz.campaign` one
campaign process, :mod:`vmm.fuzz.runner` the command (the ``fuzz`` extra:
Hypothesis and rich).
"""
