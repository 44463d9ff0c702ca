"""The website: build the Jupyter Book, then look at it in a browser.

SLOW (minutes): the build (``python -m iwae_lib.chapters.build --profile smoke``, as
``IWAE_SMOKE=1 bash scripts/build_book.sh`` runs it) executes every chapter's notebook in the
smoke profile into ``_build/smoke/``, unless its cache already holds an execution of the same
code with the same library.

``IWAE_BOOK_PROFILE=full python -m pytest tests/book/test_book.py`` checks the full book instead
(``_build/full/``, as ``bash scripts/build_book.sh`` builds it): it needs every run of
``python -m iwae_lib runs`` recorded (the build refuses otherwise, and so the test fails with
the list of missing runs), and it also checks that the chapters show those recorded runs and
not the smoke profile's. In both profiles no chapter may show the process of making the runs
(revisions, CPU names, paths, hours, pids: the back matter's page "How the runs were made"
holds them). The screenshots go to ``_build/screenshots/<profile>/``. The browser check
needs Debian's ``chromium`` (``apt-get install -y chromium``) and is skipped without it, except
when ``IWAE_REQUIRE_BROWSER=1`` (set by CI), where a missing browser fails the test.
"""

import functools
import html
import http.server
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from iwae_lib import chapters

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "_build"
PROFILE = os.environ.get("IWAE_BOOK_PROFILE", "smoke")  # the profile whose build these tests check
HTML = BUILD / PROFILE / "html"
SCREENSHOTS = BUILD / "screenshots" / PROFILE
CHROMIUM = Path("/usr/bin/chromium")
BUILD_TIMEOUT = 1800
TF_KERNEL_LINE = "All log messages before absl::InitializeLog() is called are written to STDERR"

pytestmark = pytest.mark.slow


def toc_files():
    """Every document named in _toc.yml, in order (paths without suffix)."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def chapter_files():
    return [f for f in toc_files() if f.startswith("notebooks/")]


def book_env():
    env = dict(os.environ)
    env.pop("IWAE_SMOKE", None)
    env.pop("IWAE_PROFILE", None)
    if PROFILE == "smoke":
        env["IWAE_SMOKE"] = "1"
    env["IPYTHONDIR"] = str(REPO / ".ipython")
    # the runs a chapter trains go under the build (runs/smoke/ is nbval's, which may run
    # the same chapter at the same time in another test worker)
    env["IWAE_RUNS_DIR"] = str(BUILD / PROFILE / "runs")
    env.setdefault("IWAE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    return env


@pytest.fixture(scope="module")
def built_book():
    """Build the book once for this module; returns the html folder."""
    if PROFILE not in chapters.PROFILES:
        pytest.fail(f"IWAE_BOOK_PROFILE must be one of {', '.join(chapters.PROFILES)}, got {PROFILE!r}")
    if not os.environ.get("IWAE_DATA_DIR") or not Path(os.environ["IWAE_DATA_DIR"]).is_dir():
        pytest.skip("no data folder: set IWAE_DATA_DIR to the folder holding the MNIST files")
    command = [sys.executable, "-m", "iwae_lib.chapters.build", "--profile", PROFILE, str(REPO)]
    result = subprocess.run(command, cwd=REPO, env=book_env(), capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT)
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"jupyter-book build failed (exit {result.returncode}):\n{log}"
    # Sphinx warnings (which also fail the build); not the line that TensorFlow's C++ runtime writes to the
    # notebook kernels' stderr, which the build passes through, when a chapter imports it
    warned = [line for line in (result.stdout + result.stderr).splitlines()
              if "WARNING:" in line and TF_KERNEL_LINE not in line]
    assert not warned, f"the build warned:\n{log}"
    return HTML


# An output that is nothing but a number printed at full precision: a cell whose last line
# returns a value (e.g. a glue call) instead of printing a sentence.
BARE_NUMBER_OUTPUT = re.compile(r'<div class="cell_output[^"]*">\s*<div class="output text_plain[^"]*">'
                                r'<div class="highlight"><pre><span></span>([-+]?\d+\.\d{6,}(?:e[-+]?\d+)?)\s*</pre>')


def test_every_page_of_the_toc_is_built(built_book):
    chapters = chapter_files()
    assert sorted(chapters) == sorted(f"notebooks/{p.stem}" for p in (REPO / "notebooks").glob("*.ipynb"))
    for name in toc_files():
        page = built_book / f"{name}.html"
        assert page.is_file(), f"{page} was not built"
    for name in chapters:
        text = (built_book / f"{name}.html").read_text()
        assert "cell_output" in text, f"{name}: no executed outputs in the page"
        assert "Traceback" not in text and "output_stderr" not in text and "ansi-red" not in text
        bare = BARE_NUMBER_OUTPUT.findall(text)
        assert not bare, f"{name}: an output that is a bare, unformatted number: {bare}"
    bibliography = (built_book / "book" / "references.html").read_text()
    assert "Importance Weighted Autoencoders" in bibliography


# The one line a chapter prints about the runs it shows (chapters.runs_note), in the full profile.
RUNS_NOTE = re.compile(r"Runs shown: (.*?)\. Provenance: back matter, '" + re.escape(chapters.RUNS_PAGE) + "'\\.", re.S)
# What a rendered chapter must not show: the process of making the runs (the same pattern as
# the audit, ../shared/tools/book_audit.py): revisions, CPU names, absolute paths,
# training speed and hours, process ids. They belong on the back matter's page.
PROCESS = re.compile(r"git revision|\+dirty|AMD EPYC|Intel\(R\)|(?:^|\s)/[A-Za-z_]+/[\w.-]+|steps/s|h of training"
                     r"|\bpid\b")


def page_text(path: Path) -> str:
    """A page's text as the audit reads it: no scripts, styles, inline images or tags."""
    raw = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", path.read_text(encoding="utf-8"))
    return re.sub(r"<[^>]+>", " ", re.sub(r"data:[\w/+.-]+;base64,[\w+/=]+", " ", raw))


def runs_notes(path: Path) -> list:
    """The run names of each runs note on a chapter's page: ["a, b (fast recipe, 328 epochs);
    c (...)"] -> [["a", "b", "c"]]."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))).split())
    return [[name.strip() for name in re.split(r"[,;]", re.sub(r"\([^)]*\)", "", note)) if name.strip()]
            for note in RUNS_NOTE.findall(text)]


def test_every_chapter_shows_its_profiles_runs(built_book):
    """No chapter's page shows the process of making the runs (either profile). Smoke: every
    chapter says once that it shows the smoke profile (its runs note). Full: none does; each
    prints one runs note, which names exactly the runs of the book's list (catalog) that the
    chapter shows (a long run once it is recorded: catalog.shown_runs), all recorded (none
    was trained during the build)."""
    from iwae_lib.chapters import catalog

    runs = catalog.shown_runs(chapters.results_dir())
    for name in chapter_files():
        page = built_book / f"{name}.html"
        text = page.read_text()
        found = PROCESS.findall(page_text(page))
        assert not found, f"{name}: the page shows the process of making the runs: {sorted(set(found))}"
        if PROFILE == "smoke":
            assert text.count("Smoke profile:") == 1, f"{name}: says {text.count('Smoke profile:')} times that it " \
                                                      "is the smoke profile (book.runs_note), want once"
            continue
        assert "Smoke profile:" not in text, f"{name}: shows the smoke profile's output"
        assert "is not recorded in results/" not in text, f"{name}: a run was trained during the build instead of loaded"
        notes = runs_notes(page)
        assert len(notes) == 1, f"{name}: {len(notes)} runs notes (chapters.runs_note), want one"
        chapter = int(Path(name).name.split("_")[0])
        shown = [run.name for run in runs.values() if chapter in run.chapters]
        missing = [run for run in shown if run not in notes[0]]
        assert not missing, f"{name}: its runs note does not name the catalog's runs {missing}"
        unlisted = [run for run in notes[0] if run not in shown]
        assert not unlisted, (f"{name}: its runs note names {unlisted}, which the catalog (iwae_lib/chapters/catalog.py) "
                              f"does not list for chapter {chapter}, so the back matter does not say how they were made")


class _TableRows(HTMLParser):
    """Each row of the first table body in a page: the text of its cells and the first link."""

    def __init__(self):
        super().__init__()
        self.rows, self.links, self._in_body, self._cell = [], [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody" and not self.rows:
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
            self.links.append(None)
        elif self._in_body and tag == "td":
            self._cell = ""
        elif self._cell is not None and tag == "a" and self.links[-1] is None:
            self.links[-1] = dict(attrs).get("href")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join(self._cell.split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


FULL_BUILD_SECONDS = 15 * 60  # what a whole full build on a fresh clone may take, set-up included


def test_the_execution_page_times_every_chapter(built_book):
    """book/execution.md's table: a row per chapter (its title, linked to it), when it ran
    and its seconds, then the total; in a full build the chapters together take less than
    the whole build may."""
    parser = _TableRows()
    parser.feed((built_book / "book" / "execution.html").read_text())
    *rows, total = parser.rows
    pages = [urlparse(link).path.removeprefix("../").removesuffix(".html") for link in parser.links[:-1]]
    assert pages == chapter_files(), f"the table links {pages}"
    seconds = []
    for page, (title, ran_at, runtime) in zip(pages, rows):
        chapter = (built_book / f"{page}.html").read_text()
        assert f"<title>{html.escape(title)}" in chapter, f"{page}: the table calls it {title!r}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", ran_at), f"{page}: ran at {ran_at!r}"
        seconds.append(float(runtime))
        assert seconds[-1] > 0, f"{page}: no run time"
    assert total[0] == f"all {len(rows)} chapters", total
    assert abs(float(total[2]) - sum(seconds)) <= 0.05 * len(rows), (total, seconds)  # rows show 0.1 s
    if PROFILE == "full":
        assert sum(seconds) < FULL_BUILD_SECONDS, f"the chapters took {dict(zip(pages, seconds))} s"


# ----------------------------------------------------------------------------- browser


class _Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves the html folder and records (path, status) of every request."""

    requests = []

    def log_request(self, code="-", size="-"):
        self.requests.append((unquote(urlparse(self.path).path), int(code) if str(code).isdigit() else 0))

    def log_message(self, *args):
        pass


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


@pytest.fixture(scope="module")
def server(built_book):
    handler = functools.partial(_Recorder, directory=str(built_book))
    socketserver.TCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        httpd.shutdown()


def chromium(tmp_path, *args, timeout=120):
    if not CHROMIUM.exists():
        message = "headless browser check needs /usr/bin/chromium (apt-get install -y chromium)"
        if os.environ.get("IWAE_REQUIRE_BROWSER") == "1":  # CI installs it: a missing browser is a failure there
            pytest.fail(message)
        pytest.skip(message)
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"chromium failed: {result.stderr[-3000:]}"
    return result.stdout


# Chapters opened in the browser: (page, screenshot name, at least this many formulas and figures).
BROWSER_PAGES = [("notebooks/01_iwae_baseline.html", "chapter1", 5, 5),
                 ("notebooks/03_static_binarization.html", "chapter3", 2, 3),
                 ("notebooks/06_two_stochastic_layers.html", "chapter6", 5, 1),
                 ("notebooks/10_reaching_faster.html", "appendix", 5, 5)]


@pytest.mark.parametrize("page, shot_name, min_formulas, min_figures", BROWSER_PAGES)
def test_chapters_render_in_a_browser(server, built_book, tmp_path, page, shot_name, min_formulas, min_figures):
    _Recorder.requests.clear()
    dom = chromium(tmp_path, "--dump-dom", f"{server}/{page}")

    # formulas typeset by the locally served MathJax
    assert len(re.findall(r"<mjx-container", dom)) >= min_formulas, "MathJax did not typeset the formulas"
    assert "cdn.jsdelivr.net" not in (built_book / page).read_text(), "MathJax should not come from a CDN"
    served = dict(_Recorder.requests)
    assert served.get("/_static/mathjax/tex-mml-chtml.js") == 200
    assert any(path.endswith(".woff") and status == 200 for path, status in _Recorder.requests), "no MathJax font"

    # every figure of the page exists, is not empty, and was fetched by the browser
    parser = _Images()
    parser.feed((built_book / page).read_text())
    figures = [src for src in parser.sources if src.startswith("../_images/")]
    assert len(figures) >= min_figures, f"expected the chapter's figures, found {parser.sources}"
    for src in figures:
        file = (built_book / page).parent / src
        assert file.is_file() and file.stat().st_size > 1000, f"{src} missing or empty"
        assert served.get("/" + str(file.resolve().relative_to(built_book.resolve()))) == 200, f"{src} not loaded"

    # no error output anywhere
    assert "Traceback" not in dom and "output_stderr" not in dom and "output_error" not in dom
    failed = [(path, status) for path, status in _Recorder.requests if status >= 400 and path != "/favicon.ico"]
    assert not failed, f"some requests failed: {failed}"

    # a screenshot for people to look at
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = tmp_path / f"{shot_name}.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars", f"{server}/{page}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, "screenshot missing or blank"
    shutil.copy(shot, SCREENSHOTS / f"{shot_name}.png")
