import pytest

from hyp.gunyah.hypervisor import Gunyah


@pytest.fixture
def gunyah():
    g = Gunyah(dram_size=1 << 30)
    yield g
    g.close()
