"""Sphinx configuration: builds the API reference (api.rst) from the docstrings.

The other pages are plain reStructuredText, read as they are on the forge;
only api.rst is a Sphinx document (``tests/test_documentation.py`` builds it
with warnings as errors).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

project = "gunyah-sim"
root_doc = "api"
include_patterns = ["api.rst"]
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
