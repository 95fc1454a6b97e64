"""vmm/fuzz/runner.py: the summary of jobs' records."""

import subprocess
import sys

from rich.console import Console

from vmm.fuzz import runner


def test_a_failure_found_counts_before_it_is_written_up(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    job = runner.Job(0, proc, tmp_path / "log", latest={"failure": {"message": "hang: a step"}})
    merged = runner.merge([job], "gunyah", 1.0, interrupted=True)
    assert merged["failures"] == [{"message": "hang: a step"}] and merged["hangs"] == 1


def test_a_job_killed_is_a_job_that_died_not_an_escape(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"])
    proc.wait()
    merged = runner.merge([runner.Job(0, proc, tmp_path / "log")], "gunyah", 1.0)
    assert merged["jobs_died"] == 1 and merged["escapes"] == 0
    assert merged["failures"][0]["message"].startswith("the job died (exit -9)")


def test_the_display_shows_brackets_as_text_not_markup(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    latest = {"outcomes": [["GUNYAH_VM_ADD_FUNCTION", "fd[gh-gmem]", "[gh-vm]", 1]]}
    job = runner.Job(0, proc, tmp_path / "log", latest=latest, done=latest)
    console = Console(record=True, width=200)
    console.print(runner._display([job], "gunyah", 0.0, runner.Length(examples=10)))
    text = console.export_text()
    assert "fd[gh-gmem]" in text and "states reached: [gh-vm]" in text
