"""vmm/fuzz/reproducer.py: the script is valid Python whatever the example,
and a reproducer counts only when it fails the same way."""

import subprocess
import sys

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


def test_a_step_that_never_returns_ends_the_script_as_a_hang_at_that_step(tmp_path):
    lines = ["host.open('/dev/gunyah')", "__import__('time').sleep(600)"]
    text = reproducer.script("gunyah", lines, "hang: a step", 1, "f.py", limit=10.0)
    (tmp_path / "f.py").write_text(text)
    alone = subprocess.run(
        [sys.executable, "f.py"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert alone.returncode != 0
    said = alone.stderr.splitlines()[-1]
    assert said == "hang at step 2: __import__('time').sleep(600) (more than 10 s)"
