"""vmm/fuzz/reproducer.py: the script is valid Python whatever the example,
and a reproducer counts only when it fails the same way."""

from vmm.fuzz import reproducer


def test_an_example_with_no_step_yet_is_still_a_valid_script():
    text = reproducer.script("gunyah", [], "hang: a step took more than 0.3 s", 7, "f.py")
    compile(text, "f.py", "exec")


def test_the_same_failure_is_the_same_kind_not_any_failure():
    campaign = "AssertionError: leak after close: rm_vms () -> (1,)"
    alone = "AssertionError: leak after close: rm_vms () -> (2,)"
    assert reproducer.failure_class(campaign) == reproducer.failure_class(alone)
    other = "AssertionError: wrong errno: GUNYAH_VM_START gave EIO"
    assert reproducer.failure_class(campaign) != reproducer.failure_class(other)
    hang = "hang: a step took more than 0.3 s (stacks in x)"
    assert reproducer.failure_class(hang) == reproducer.failure_class("hang at step 0: boot")
    assert reproducer.failure_class(hang) != reproducer.failure_class("SyntaxError: bad")
