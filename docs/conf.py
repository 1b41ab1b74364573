"""Sphinx configuration of the flask_fs documentation."""

import doctest
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "_examples"))  # the example backend of writing-a-backend.rst
sys.path.insert(0, os.path.join(HERE, "_ext"))  # the settings table, generated from the declarations

import flask_fs  # noqa: E402

project = "flask_fs"
author = "flask_fs developers"
release = flask_fs.__version__
extensions = [
    "sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.doctest", "sphinx.ext.viewcode", "settings_table",
]  # fmt: skip
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports = []
nitpicky = False
intersphinx_mapping = {}
html_theme = "furo"
html_title = "flask_fs"
exclude_patterns = ["_build", "_examples", "_ext"]

# Doctests check exception messages too (Sphinx ignores them by default): the docs show real output.
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1 | doctest.NORMALIZE_WHITESPACE
