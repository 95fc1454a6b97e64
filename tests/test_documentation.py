"""Documentation/api.rst: Sphinx builds it with warnings as errors, and its code runs.

The build is the reader's: api.rst's autodoc entries import the modules
they document, so a docstring that Sphinx cannot parse, a renamed function
or a literalinclude whose markers left the header fails here.
"""

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kernel

ROOT = Path(__file__).parents[1]
API = (ROOT / "Documentation" / "api.rst").read_text()


def python_blocks(text: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives, dedented."""
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text)
    return [textwrap.dedent(block) for block in blocks]


def test_sphinx_builds_the_api_reference_without_a_warning(tmp_path):
    sources = str(ROOT / "Documentation")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            sources,
            tmp_path,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "api.html").read_text()
    for documented in ("kernel.boot", "Host.fallocate", "DoorbellVdevice", "gunyah_fn_irqfd_arg"):
        assert documented in page


def test_the_api_pages_code_runs_as_one_program():
    program = "\n".join(python_blocks(API))
    assert "GUNYAH_FN_IOEVENTFD" in program and "GUNYAH_FN_IRQFD" in program
    subprocess.run([sys.executable, "-c", program], check=True, cwd=ROOT, timeout=240)


def test_the_boot_docstrings_example_runs():
    doc = inspect.getdoc(kernel.boot)
    example = textwrap.dedent(doc.split("Example::\n", 1)[1])
    subprocess.run([sys.executable, "-c", example], check=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("trace", [True, 1, "print"])
def test_a_trace_that_is_not_callable_is_a_type_error(trace):
    with pytest.raises(TypeError, match="trace must be a callable taking one line"):
        kernel.boot(trace=trace)
