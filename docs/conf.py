"""Sphinx configuration for skmia's documentation."""

import skmia

project = "skmia"
author = "The skmia developers"
copyright = "2026, The skmia developers"  # noqa: A001 - Sphinx's name
release = skmia.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
intersphinx_mapping = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"skmia {release}"
