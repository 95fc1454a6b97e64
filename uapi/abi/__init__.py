"""ABI descriptions of C headers, and the checker behind ``gunyah-sim abi-check``.

model: what an ABI is (records, field layouts, constants, ioctls) and how
  a loaded cffi header describes itself.
clang: which names a C header declares, read with libclang, and the
  compiler that measures them.
probe: what those names measure and evaluate to, read out of the object file
  a C compiler builds from a probe (the bundled compiler: arm64's ABI).
check: a header against a profile (v16, ack, gzvm), with explanations.
"""
