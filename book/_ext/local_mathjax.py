"""Serve MathJax 3 from the built book itself instead of a CDN.

The pip package ``django-static-mathjax`` (in requirements.txt) ships MathJax 3 as plain
files in the Python package ``mathjax``. When it is installed, this extension points
Sphinx's ``mathjax_path`` at ``_static/mathjax/tex-mml-chtml.js`` and copies that script,
its fonts and its lazily loaded components into the HTML output, so formulas render with
no network access (CI, offline reading). Without the package the CDN default stays.
"""

import importlib.util
import shutil
from pathlib import Path

SCRIPT = "tex-mml-chtml.js"
PARTS = ("output/chtml/fonts/woff-v2", "input/tex/extensions", "a11y", "ui")
TARGET = "mathjax"


def mathjax_source():
    """The ``es5`` folder of the installed MathJax 3 package, or None."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        es5 = Path(location) / "static" / "mathjax" / "es5"
        if (es5 / SCRIPT).is_file():
            return es5
    return None


def _use_local(app, config):
    if mathjax_source() is not None:
        config.mathjax_path = f"{TARGET}/{SCRIPT}"


def _copy(app, exception):
    source = mathjax_source()
    if exception is not None or source is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / TARGET
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / SCRIPT, target / SCRIPT)
    for part in PARTS:
        shutil.copytree(source / part, target / part, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _use_local, priority=900)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
