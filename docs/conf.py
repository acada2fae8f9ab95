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
templates_path = ["_templates"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
intersphinx_mapping = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"skmia {release}"


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """scikit-learn generates ``set_*_request`` methods on every estimator class."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
