"""README.md: its Python examples run as written; CI runs its test command."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_python_examples_run_as_written():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        subprocess.run([sys.executable, "-c", block], check=True, cwd=ROOT, timeout=120)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci
    command = README.split("<!-- test-command -->")[1].split("```")[1].strip()
    assert command.endswith("python -m pytest")
    assert "apt-get" not in ci  # Python and venv are all the README asks for
