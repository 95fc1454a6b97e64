"""ABI descriptions of C headers, and the checker behind ``gunyah-sim abi-check``.

model: what an ABI is (records, field layouts, constants, ioctls) and how
  a loaded cffi header describes itself.
clang: which names a C header declares, read with libclang.
gcc: what those names measure and evaluate to, by compiling and running a
  probe program with the host's C compiler.
check: a header against a profile (v16, ack, gzvm), with explanations.
"""
