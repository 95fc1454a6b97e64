"""vmm/fuzz/runner.py: the summary of jobs' records."""

import subprocess
import sys

from vmm.fuzz import runner


def test_a_failure_found_counts_before_it_is_written_up(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    job = runner.Job(0, proc, tmp_path / "log", latest={"failure": {"message": "hang: a step"}})
    merged = runner.merge([job], "gunyah", 1.0, interrupted=True)
    assert merged["failures"] == [{"message": "hang: a step"}] and merged["hangs"] == 1
