"""The sample VMM and the ``gunyah-sim`` command line."""
