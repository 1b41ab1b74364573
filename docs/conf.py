"""Sphinx configuration of the flask_fs documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import flask_fs  # noqa: E402

project = "flask_fs"
author = "flask_fs developers"
release = flask_fs.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.doctest", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports = []
nitpicky = False
intersphinx_mapping = {}
html_theme = "furo"
html_title = "flask_fs"
exclude_patterns = ["_build"]
