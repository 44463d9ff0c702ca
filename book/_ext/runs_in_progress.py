"""A list of the runs being trained in ``results/`` when the site is built.

``{runs-in-progress}`` in a page becomes a bullet list, one item per folder of ``results/``
that holds a checkpoint but no ``metrics.json`` (:func:`iwae_lib.bookkeeping.runs_page.in_progress`):
its name, recipe, and the epochs done of its total at build time; or a sentence saying that
there is none. It is made when the site is built, not written into a file, because a
training run's progress changes every few minutes.
"""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _paragraph(*parts):
    """A paragraph of text and ``code`` parts: (text, is_code) pairs."""
    paragraph = nodes.paragraph()
    for text, code in parts:
        paragraph += nodes.literal(text=text) if code else nodes.Text(text)
    return paragraph


def items(results):
    """The list's entries as (name, rest of the sentence), from :func:`in_progress`."""
    from iwae_lib.bookkeeping.runs_page import in_progress

    return [(run["name"], f": {run['recipe']}, {run['epochs_done']} of {run['total_epochs']} epochs done")
            for run in in_progress(results)]


class RunsInProgress(SphinxDirective):
    has_content = False

    def run(self):
        from iwae_lib import chapters

        entries = items(chapters.results_dir())
        if not entries:
            return [_paragraph(("None: no folder of ", False), ("results/", True),
                               (" held an unfinished run when this site was built.", False))]
        found = nodes.bullet_list()
        for name, rest in entries:
            item = nodes.list_item()
            item += _paragraph((name, True), (rest, False))
            found += item
        return [found]


def setup(app):
    app.add_directive("runs-in-progress", RunsInProgress)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
