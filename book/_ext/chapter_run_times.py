"""A table of how long each chapter's notebook took to execute in the build that made the site.

``{chapter-run-times}`` in a page becomes a sentence naming the build's profile and a
three-column table (chapter, when it ran, seconds) with a last row that adds the seconds
up. It reads the execution records that MyST-NB keeps for every executed notebook (what its own ``nb-exec-table`` shows, in a form that fits the
page: chapter titles instead of file names, no status column, which a failing chapter never
reaches because the build stops on it).
"""

from datetime import datetime, timezone

from docutils import nodes
from myst_nb.ext.execution_tables import METADATA_KEY
from myst_nb.sphinx_ import NbMetadataCollector
from sphinx.addnodes import pending_xref
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

HEADER = ("Chapter", "Ran at (UTC)", "Seconds")


class RunTimesNode(nodes.General, nodes.Element):
    """Where the table goes, until every notebook has executed."""


class ChapterRunTimes(SphinxDirective):
    has_content = False

    def run(self):
        # marked like MyST-NB's own table, so the page is rebuilt whenever a notebook re-executes
        NbMetadataCollector.set_doc_data(self.env, self.env.docname, METADATA_KEY, True)
        return [RunTimesNode()]


def _row(cells):
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=cell)
        row += entry
    return row


def _link(parent, docname, title):
    ref = pending_xref(refdoc=parent, reftarget="/" + docname, reftype="doc", refdomain="std",
                       refexplicit=True, refwarn=True)
    ref += nodes.inline(text=title)
    paragraph = nodes.paragraph()
    paragraph += ref
    return paragraph


def run_times(env):
    """[(docname, numbered title, ran_at, seconds)] of every executed notebook, in file-name order."""
    rows = []
    for docname, data in sorted(NbMetadataCollector.get_doc_data(env).items()):
        record = data.get("exec_data")
        if not record:
            continue
        ran_at = datetime.fromtimestamp(record["mtime"], timezone.utc) if record.get("mtime") else None
        title = env.titles[docname].astext() if docname in env.titles else docname
        number = env.toc_secnumbers.get(docname, {}).get("")
        if number:  # as the sidebar numbers it
            title = ".".join(map(str, number)) + ". " + title
        rows.append((docname, title, ran_at, record.get("runtime")))
    return rows


def make_table(parent, rows):
    table = nodes.table(classes=["colwidths-auto"])
    group = nodes.tgroup(cols=len(HEADER))
    table += group
    for _ in HEADER:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    head += _row(HEADER)
    body = nodes.tbody()
    for docname, title, ran_at, seconds in rows:
        body += _row([_link(parent, docname, title),
                      ran_at.strftime("%Y-%m-%d %H:%M") if ran_at else "-",
                      "-" if seconds is None else f"{seconds:.1f}"])
    total = sum(seconds for *_, seconds in rows if seconds is not None)
    body += _row([f"all {len(rows)} chapters", "", f"{total:.1f}"])
    group += head
    group += body
    return table


def profile_sentence():
    """Which profile the chapters ran in (``iwae_lib.chapters.build`` sets it for the whole build)."""
    from iwae_lib.chapters.profiles import profile

    name = profile()
    other = "IWAE_SMOKE=1 bash scripts/build_book.sh" if name == "full" else "bash scripts/build_book.sh"
    paragraph = nodes.paragraph(text=f"This site was built in the {name} profile; ")
    paragraph += nodes.literal(text=other)
    paragraph += nodes.Text(f" builds the {'smoke' if name == 'full' else 'full'} one, whose page of this name "
                            "gives that profile's times.")
    return paragraph


class FillRunTimes(SphinxPostTransform):
    default_priority = 8  # before the references are resolved

    def run(self, **kwargs):
        for node in list(self.document.findall(RunTimesNode)):
            node.replace_self([profile_sentence(), make_table(self.env.docname, run_times(self.env))])


def setup(app):
    app.add_node(RunTimesNode)
    app.add_directive("chapter-run-times", ChapterRunTimes)
    app.add_post_transform(FillRunTimes)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
