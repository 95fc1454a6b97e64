"""What a booted host holds: the accounting lives in vmm/fuzz/leaks.py, where
``gunyah-sim fuzz`` uses it too; the tests take it from here."""

from vmm.fuzz.leaks import (  # noqa: F401 (re-exported)
    LONG_LIVED,
    GzHoldings,
    Holdings,
    gz_holdings,
    gz_leaked,
    holdings,
    leaked,
)
