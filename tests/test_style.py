"""Style rules are tests: ruff's lint and format checks over the tree."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_ruff_lint_is_clean():
    res = ruff("check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format_is_clean():
    res = ruff("format", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr
