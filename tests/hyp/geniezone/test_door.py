"""The host's door: both numberings, unknown ids, and no input ever raising out of EL2."""

from hypothesis import given, settings
from hypothesis import strategies as st

from hyp.geniezone.errors import Error
from hyp.geniezone.hypercalls import SMC32_BASE, SMC64_BASE, TABLE
from hyp.geniezone.vcpu import GzvmExit
from tests.aarch64 import assemble
from tests.hyp.geniezone.gzhelper import MMIO_IPA, Door, build_vm, signed


def test_the_smc32_numbering_runs_a_vm(gz):
    door = Door(gz, smc32=True)
    vm = build_vm(door, assemble(f"ldr x9, ={MMIO_IPA:#x}\nstr x9, [x9]\nb ."))
    assert vm.run() == GzvmExit.MMIO
    # 14 and 15 are MEMREGION_PURPOSE and SET_DTB_CONFIG there
    assert signed(gz.hvc([SMC32_BASE + 14, vm.vm_id, 0x8000_0000, 0x1000, 1])[0]) == 0
    assert gz.vms[vm.vm_id].purposes == [(0x8000_0000, 0x1000, 1)]
    assert signed(gz.hvc([SMC32_BASE + 15, vm.vm_id, 0x8000_0000, 0x100])[0]) == 0
    assert gz.vms[vm.vm_id].dtb == (0x8000_0000, 0x100)
    # and in SMC64, 14 is INFORM_EXIT, 15 MEMREGION_PURPOSE
    assert signed(gz.hvc([SMC64_BASE + 14, vm.vm_id])[0]) == 0
    purpose = [SMC64_BASE + 15, vm.vm_id, 0x8000_0000, 0x1000, 9]  # flag 8 is unknown
    assert signed(gz.hvc(purpose)[0]) == Error.ERR_INVALID_ARGS


def test_ids_without_a_call(gz):
    assert signed(gz.hvc([SMC32_BASE + 16])[0]) == Error.ERR_NOT_SUPPORTED  # no MAP_GUEST there
    assert signed(gz.hvc([SMC64_BASE + 20])[0]) == Error.ERR_NOT_SUPPORTED
    assert signed(gz.hvc([SMC64_BASE + 6])[0]) == Error.ERR_NOT_SUPPORTED  # removed in v5
    assert signed(gz.hvc([SMC32_BASE + 6])[0]) == Error.ERR_NOT_IMPLEMENTED  # GET_REGS
    assert signed(gz.hvc([SMC32_BASE + 7])[0]) == Error.ERR_NOT_IMPLEMENTED
    assert signed(gz.hvc([0xC600_8000])[0]) == -1  # not GenieZone's: SMCCC NOT_SUPPORTED


def test_every_call_without_a_vm_is_an_error(door):
    for call in TABLE:
        if call.smc64 is None or call.name in ("CREATE_VM", "PROBE", "ENABLE_CAP"):
            continue
        assert door.err(call.name, 7, 7, 7, 7, 7, 7, 7) in (
            Error.ERR_INVALID_ARGS,
            Error.ERR_NOT_IMPLEMENTED,
        ), call.name


CALLS = st.sampled_from([SMC64_BASE + n for n in range(21)] + [SMC32_BASE + n for n in range(17)])
WORD = st.one_of(st.integers(0, 16), st.integers(0, (1 << 64) - 1), st.just(0x8000_0000))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(CALLS, st.lists(WORD, min_size=7, max_size=7)), max_size=8))
def test_random_calls_never_raise(calls):
    from hyp.geniezone.hypervisor import GenieZone

    gz = GenieZone(dram_size=1 << 28)
    try:
        door = Door(gz)
        vm = door.ok("CREATE_VM", 0)[0]
        for fid, args in calls:
            if fid & 0xFFF == 5:  # RUN would run a guest made of zeros: skip it
                continue
            args = [vm if a == 1 else a for a in args]
            out = gz.hvc([fid, *args])
            assert len(out) == 4 and all(0 <= v < 1 << 64 for v in out)
            assert out[0] == 0 or signed(out[0]) in set(Error) | {-1}
    finally:
        gz.close()
