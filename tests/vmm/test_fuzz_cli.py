"""``gunyah-sim fuzz``: a short campaign on each target, the JSON summary, a
broken kernel caught with a reproducer that fails alone, resumption from the
example database, and one-line usage errors."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def fuzz(tmp_path, *args, timeout=600):
    argv = [sys.executable, "-m", "vmm.cli", "fuzz", "--out", str(tmp_path), *args]
    if "--db" not in args:
        argv += ["--db", str(tmp_path / "db")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def summary_of(p) -> dict:
    return json.loads(p.stdout)


@pytest.mark.parametrize(("target", "examples"), [("gunyah", 50), ("gzvm", 10)])
def test_a_short_campaign_runs_clean_and_sums_up(tmp_path, target, examples):
    p = fuzz(tmp_path, "--target", target, "--examples", str(examples))
    assert p.returncode == 0, p.stderr
    s = summary_of(p)
    assert s["target"] == target and s["examples"] >= examples and s["ioctls"] > 0
    assert s["escapes"] == s["wrong_errnos"] == s["leaks"] == s["hangs"] == 0
    assert s["failures"] == [] and s["distinct_triples"] > 1 and "closed" in s["states"]
    assert json.loads((tmp_path / f"fuzz-{target}-summary.json").read_text()) == s
    assert "gunyah-sim fuzz: " in p.stderr  # the progress, one line at a time off a terminal


def test_jobs_run_their_own_seeds_and_their_summaries_are_merged(tmp_path):
    p = fuzz(tmp_path, "--examples", "20", "--jobs", "2", "--seed", "5")
    assert p.returncode == 0, p.stderr
    s = summary_of(p)
    assert s["jobs"] == 2 and s["seeds"] == [5, 6] and s["examples"] >= 20
    assert (tmp_path / "fuzz-gunyah-5.log").exists() and (tmp_path / "fuzz-gunyah-6.log").exists()


BROKEN = ("--inject", "gunyah_rm_dealloc_vmid=EIO")  # every VM_DEALLOCATE refused: vmids leak


def test_a_broken_kernel_fails_the_campaign_with_a_reproducer_that_fails_alone(tmp_path):
    p = fuzz(tmp_path, "--examples", "500", *BROKEN)
    assert p.returncode == 1, p.stderr
    s = summary_of(p)
    assert s["leaks"] == 1 and s["escapes"] == s["wrong_errnos"] == 0
    [failure] = s["failures"]
    assert failure["message"].startswith("AssertionError: leak after close: rm_vms")
    assert failure["reproduced"] is True
    script = re.search(r"gunyah-sim fuzz: reproducer: (\S+)", p.stderr).group(1)
    trace = re.search(r"gunyah-sim fuzz: trace: (\S+)", p.stderr).group(1)
    traced = Path(trace).read_text()
    assert "GUNYAH_VM_START, 0) = 0" in traced
    assert "rm_call(gunyah_rm_dealloc_vmid) = -1 EIO (injected)" in traced
    text = Path(script).read_text()
    assert "hypothesis" not in text and "kernel.boot(" in text
    alone = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert alone.returncode != 0
    assert "AssertionError: leak after close: rm_vms () -> (" in alone.stderr


def test_the_example_database_replays_a_failure_first(tmp_path):
    db = str(tmp_path / "db")
    assert fuzz(tmp_path, "--examples", "500", "--db", db, *BROKEN).returncode == 1
    again = fuzz(tmp_path, "--examples", "1", "--seed", "99", "--db", db, *BROKEN)
    assert again.returncode == 1, again.stderr
    assert summary_of(again)["leaks"] == 1


def test_a_step_beyond_the_step_limit_is_a_hang_with_the_stacks_and_the_example_so_far(tmp_path):
    p = fuzz(tmp_path, "--examples", "100000", "--step-limit", "0.001")
    assert p.returncode == 1, p.stderr
    s = summary_of(p)
    assert s["hangs"] == 1 and s["examples"] < 100000
    [failure] = s["failures"]
    assert failure["message"].startswith("hang: a step took more than 0.001 s (stacks in ")
    stacks = tmp_path / "fuzz-gunyah-0-hang-stacks.txt"
    assert "Thread 0x" in stacks.read_text()
    text = Path(failure["reproducer"]).read_text()
    assert "kernel.boot(" in text
    compile(text, failure["reproducer"], "exec")
    assert "trace" not in failure or Path(failure["trace"]).exists()


NOT_POINT = "not POINT=ERRNO (e.g. gunyah_rm_vm_start=EIO)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time", "10x"], "--time '10x': not a duration (e.g. 90s, 10m, 2h)"),
        (["--jobs", "0"], "--jobs 0: between 1 and 256"),
        (["--examples", "1", "--jobs", "2"], "--examples 1: at least one per job (--jobs 2)"),
        (["--out", "afile"], "--out 'afile': not a directory"),
        (["--out", "afile/sub"], "--out 'afile/sub': Not a directory"),
        (["--out", "/proc/nope"], "--out '/proc/nope': No such file or directory"),
        (["--db", "afile"], "--db 'afile': not a directory"),
        (["--time", ""], "--time '': not a duration (e.g. 90s, 10m, 2h)"),
        (["--step-limit", "-1"], "--step-limit -1: a number of seconds above 0"),
        (["--step-limit", "0"], "--step-limit 0: a number of seconds above 0"),
        (["--step-limit", "nan"], "--step-limit nan: a number of seconds above 0"),
        (["--inject", "nope=EIO"], "--inject 'nope=EIO': " + NOT_POINT),
        (["--inject", "gunyah_rm_vm_start=EX"], "--inject 'gunyah_rm_vm_start=EX': " + NOT_POINT),
        (["--target", "gzvm", *BROKEN], "--inject: GenieZone has no Resource Manager to break"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "afile").write_text("")
    p = fuzz(tmp_path, *args)
    assert p.returncode == 2
    assert p.stderr == f"gunyah-sim fuzz: {message}\n"


@pytest.mark.parametrize("missing", ["hypothesis", "rich"])
def test_without_the_fuzz_extra_one_line_names_it(missing):
    code = (
        f"import sys; sys.modules[{missing!r}] = None; "
        "from vmm.cli import main; sys.exit(main(['fuzz']))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr == f"gunyah-sim fuzz: needs {missing}: pip install 'gunyah-sim[fuzz]'\n"


def test_sigterm_while_a_failure_is_written_up_keeps_it_and_ends_the_reproducer(tmp_path):
    argv = [sys.executable, "-m", "vmm.cli", "fuzz", "--out", str(tmp_path), "--db", "db"]
    p = subprocess.Popen(
        [*argv, "--examples", "500", *BROKEN], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    script = tmp_path / "fuzz-gunyah-0.py"
    while not script.exists() and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 143
    s = json.loads(out)
    assert s["interrupted"] is True and s["leaks"] == 1
    time.sleep(0.5)
    assert not [c for c in Path("/proc").glob("[0-9]*/cmdline") if str(script) in _read(c)]


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # the process ended meanwhile
        return ""


def test_the_length_is_checked_every_small_batch_of_examples(tmp_path):
    p = fuzz(tmp_path, "--ioctls", "1")
    assert p.returncode == 0, p.stderr
    s = summary_of(p)
    # One Hypothesis run of at most BATCH valid examples; those it drops as invalid
    # (a draw past its buffer) also count as examples run, so only the runs are exact.
    assert s["runs"] == 1 and s["examples"] >= 1
