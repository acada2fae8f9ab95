"""Sphinx configuration for skmia's documentation.

The docs build offline (CI has no internet): the maths is rendered by the MathJax that
``sphinx-mathjax-offline`` copies into ``_static/mathjax`` (no CDN), and intersphinx
links to the projects below only when their inventories can be reached; offline they
are left out with a note, never a warning (``-W`` turns warnings into errors).
"""

import os
import socket
from urllib.parse import urlsplit

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
    "sphinx-mathjax-offline",  # MathJax 3 shipped with the pages: maths without a network
    "numpydoc",
]
autosummary_generate = True
templates_path = ["_templates"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
#: the projects whose API the docs link to, by their inventories' base URLs
_INTERSPHINX = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "skorch": "https://skorch.readthedocs.io/en/stable/",
}


def _reachable(url, timeout=3.0):
    """Whether the host of ``url`` accepts a connection (False offline, at once where
    names do not resolve). ``SKMIA_DOCS_INTERSPHINX=0`` / ``=1`` skips the check."""
    forced = os.environ.get("SKMIA_DOCS_INTERSPHINX")
    if forced in ("0", "1"):
        return forced == "1"
    host = urlsplit(url).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


intersphinx_mapping = {name: (url, None) for name, url in _INTERSPHINX.items()
                       if _reachable(url)}
intersphinx_timeout = 10
if len(intersphinx_mapping) < len(_INTERSPHINX):
    print("intersphinx: no link to "
          + ", ".join(sorted(set(_INTERSPHINX) - set(intersphinx_mapping)))
          + " (their inventories cannot be reached; names stay plain text)")
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
