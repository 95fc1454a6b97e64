"""Native programs against the model: ``gunyah-sim exec`` (Documentation/native.rst).

A C or Rust VMM binary runs unmodified in its own process with preload.c
loaded into it; the model runs in the gunyah-sim process, whose
:mod:`vmm.native.server` makes the program's calls on the device for it.
"""
