import pytest

from hyp.geniezone.hypervisor import GenieZone
from tests.hyp.geniezone.gzhelper import Door


@pytest.fixture
def gz():
    g = GenieZone(dram_size=1 << 30)
    yield g
    g.close()


@pytest.fixture
def door(gz):
    return Door(gz)
