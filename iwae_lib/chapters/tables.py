"""The paper's numbers beside the recorded runs, as Markdown tables for the README and the book.

Every number in these tables is read from ``iwae_lib.chapters.paper`` or from a recorded run in
``results/<name>/`` (``metrics.json`` of a finished run; a run without one is "not yet
recorded"); nothing is typed by hand. Two places show them and are kept current by a test:

* ``README.md``, between :data:`README_START` and :data:`README_END`;
* ``book/_generated/results.md``, included by the landing page ``book/intro.md``.

The same command writes the back matter's table of how every run was made,
``book/_generated/runs.md`` (:mod:`iwae_lib.bookkeeping.runs_page`). Rewrite them after a run finishes::

    python -m iwae_lib.chapters.tables --write      # README.md and book/_generated/{results,runs}.md
    python -m iwae_lib.chapters.tables --readme     # only README.md
    python -m iwae_lib.chapters.tables --check      # exit 1 when one is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

import iwae_lib.chapters.paper as paper

REPO = Path(__file__).resolve().parents[2]
README_START = "<!-- results table: written by `python -m iwae_lib.chapters.tables --write`; do not edit by hand -->"
README_END = "<!-- end of results table -->"
BOOK_TABLE = Path("book") / "_generated" / "results.md"
NOT_RECORDED = "not yet recorded"

_DATA_NAMES = {"mnist": "MNIST, dynamic binarization", "omniglot": "Omniglot",
               "binarized_mnist": "MNIST, fixed binarization"}


# The training recipes a paper cell may be recorded with: (label, suffix of the run's name);
# and the runs of the k=50 study's choice (:func:`iwae_lib.chapters.catalog.chosen_table1_runs`).
RECIPES = (("scaled paper stages", ""), ("fast", "_fast"), ("paper's recipe", "_paper"))
CHOSEN = "k=50 study's choice"


class CellRun(NamedTuple):
    """A run that may record a paper cell: its recipe's label (the table's column), the
    family the summary groups it in, its name in ``results/`` and its gradient estimator."""

    label: str
    family: str
    name: str
    estimator: str = "standard"


def cell_runs(dataset: str, layers: int, objective: str, k: int) -> list:
    """[CellRun] of one paper cell: one per :data:`RECIPES`, then the study's choice where it
    trained that cell (family :data:`CHOSEN`)."""
    import iwae_lib.chapters.catalog as catalog

    base = paper.run_name(dataset, layers, objective, k)
    runs = [CellRun(label, label, base + suffix) for label, suffix in RECIPES]
    for name, config in catalog.chosen_table1_runs().items():
        if (config.dataset, config.n_stochastic, config.objective, config.k) == (dataset, layers, objective, k):
            label, _, _ = catalog.chosen_recipe(objective, catalog.MOONSHOT_CHOICE)
            runs.append(CellRun(label, CHOSEN, name, config.estimator))
    return runs


def _shown_run_names(results: Path) -> set:
    import iwae_lib.chapters.catalog as catalog

    return set(catalog.shown_runs(results))


def cells(runs=None) -> list:
    """(data set, layers, objective, k) of every cell of Table 1 and Appendix D that the book
    reproduces, in table order (Table 1's data sets, then Appendix D; 1 then 2 layers; VAE then
    IWAE; k ascending).

    runs: the names of the book's runs (default: the book's list, :func:`iwae_lib.chapters.catalog.book_runs`);
    a cell is in the table when one of its :func:`cell_runs` is among them.
    """
    if runs is None:
        import iwae_lib.chapters.catalog as catalog

        runs = catalog.book_runs()
    names = set(runs)
    return [(dataset, layers, objective, k) for dataset in paper.TABLES for layers in (1, 2)
            for objective in paper.OBJECTIVES for k in paper.KS
            if any(run.name in names for run in cell_runs(dataset, layers, objective, k))]


def _read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _check_config(folder: Path, dataset: str, layers: int, objective: str, k: int, estimator: str) -> None:
    """The run in ``folder`` must be the paper's model of that cell, trained with the gradient
    ``estimator`` (its name says so)."""
    config = _read_json(folder / "config.json")["train"]
    wanted = {"dataset": dataset, "n_stochastic": layers, "objective": objective, "k": k, "estimator": estimator}
    wrong = {key: config.get(key) for key, value in wanted.items() if config.get(key) != value}
    if wrong:
        raise ValueError(f"{folder}: its name says {wanted}, but config.json has {wrong}")


def run_status(results: Path, dataset: str, layers: int, objective: str, k: int, run: CellRun) -> dict:
    """What ``results/`` holds for one paper cell, in ``run`` (one of :func:`cell_runs`).

    Returns ``{"name", "state"}`` with state "finished" (plus ``metrics``), "unfinished"
    (a run folder without ``metrics.json``) or "missing".
    """
    name, estimator = run.name, run.estimator
    folder = Path(results) / name
    if not (folder / "config.json").is_file():
        return {"name": name, "state": "missing"}
    _check_config(folder, dataset, layers, objective, k, estimator)
    if (folder / "metrics.json").is_file():
        return {"name": name, "state": "finished", "metrics": _read_json(folder / "metrics.json")}
    return {"name": name, "state": "unfinished"}


def _units(units) -> str:
    return "+".join(str(int(u)) for u in units)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def rows(results: Path | None = None) -> list:
    """One dict of table cells (strings) per paper cell and run of :func:`cell_runs` that the
    chapters show (:func:`iwae_lib.chapters.catalog.shown_runs`: a long run, of the paper's own
    recipe, the study's choice or Appendix D across k, once it is recorded), in the order of
    :func:`cells`."""
    results = REPO / "results" if results is None else Path(results)
    names = _shown_run_names(results)
    table = []
    for cell in cells(names):
        table.extend(_row(results, cell, run) for run in cell_runs(*cell) if run.name in names)
    return table


def _row(results: Path, cell: tuple, run: CellRun) -> dict:
    """The table cells of ``run`` of the paper cell (data set, layers, objective, k) (see :func:`rows`)."""
    dataset, layers, objective, k = cell
    status = run_status(results, *cell, run)
    row = {
        "paper's table": paper.TABLE_NAMES[dataset],
        "data": _DATA_NAMES[dataset],
        "model": f"{objective.upper()}, k={k}, {layers} stochastic layer{'s' if layers > 1 else ''}",
        "recipe": run.label,
        "family": run.family,
        "paper NLL": f"{paper.test_nll(dataset, layers, objective, k):.2f}",
        "paper units": _units(paper.active_units(dataset, layers, objective, k)),
        "name": status["name"],
        "state": status["state"],
    }
    if status["state"] == "finished":
        m = status["metrics"]
        row.update({
            "gap": -m["test_log_likelihood"] - paper.test_nll(dataset, layers, objective, k),
            "our NLL": f"{-m['test_log_likelihood']:.2f} ± {m['test_log_likelihood_stderr']:.2f}",
            "our units": _units(m["active_units"]),
            "epochs": str(m["epochs_completed"]),
            "time": _hours(m["wall_seconds"]["training"]),
        })
    else:
        # the progress of an unfinished run changes by the minute: the table only says it exists
        note = NOT_RECORDED + (" (unfinished run)" if status["state"] == "unfinished" else "")
        row.update({"our NLL": note, "our units": "", "epochs": "", "time": ""})
    return row


def markdown_table(results: Path | None = None, link=None, runs: bool = True) -> str:
    """The comparison as a Markdown table (no trailing newline).

    ``link(name)``: the address a run's name links to, or None for no links. ``runs``: end
    with each run's training time and name (the README's table; the book's leaves them to
    its back matter).
    """
    header = ("| paper's table | data | model | paper: test NLL | paper: active units | our recipe "
              f"| ours: test NLL (± s.e.) | ours: active units | our epochs (paper: {paper.EPOCHS}) |")
    rule = "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"
    if runs:
        header, rule = header + " training time | run |", rule + " ---: | --- |"
    lines = [header, rule]
    for row in rows(results):
        cells_ = [row["paper's table"], row["data"], row["model"], row["paper NLL"], row["paper units"],
                  row["recipe"], row["our NLL"], row["our units"], row["epochs"]]
        if runs:
            run = f"`{row['name']}`"
            if link is not None and row["state"] != "missing":
                run = f"[{run}]({link(row['name'])})"
            cells_ += [row["time"], run]
        lines.append("| " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def gap_sentence(table: list) -> str:
    """How far the recorded runs are from the paper, per recipe: the range of our test NLL minus
    the paper's (positive: ours is worse), fast recipe first; "" when no run is recorded."""
    parts = []
    for recipe in sorted([r for r, _ in RECIPES] + [CHOSEN], key=lambda r: r != "fast"):
        gaps = [row["gap"] for row in table if row["state"] == "finished" and row["family"] == recipe]
        if gaps:
            span = f"{min(gaps):+.2f} to {max(gaps):+.2f}" if len(gaps) > 1 else f"{gaps[0]:+.2f}"
            words = "the fast recipe" if recipe == "fast" else f"the {recipe}"
            parts.append(f"{span} nats for the {len(gaps)} run{'s' if len(gaps) > 1 else ''} with {words}")
    if not parts:
        return ""
    gaps = [row["gap"] for row in table if row["state"] == "finished"]
    worse = sum(gap > 0 for gap in gaps)
    count = f"all {len(gaps)}" if worse == len(gaps) else f"{worse} of the {len(gaps)}"
    return (" Our test NLL minus the paper's (positive: ours is worse) is " + " and ".join(parts)
            + f": {count} recorded runs {'are' if worse != 1 else 'is'} worse than the paper.")


def summary(results: Path | None = None, runs: bool = True) -> str:
    """How far the table's runs are from the paper; with ``runs``, first how many are recorded."""
    table = rows(results)
    states = [row["state"] for row in table]
    finished, unfinished = states.count("finished"), states.count("unfinished")
    def verb(n):
        return "is" if n == 1 else "are"

    legend = (f"NLL: negative log-likelihood in nats, estimated with k={paper.EVAL_K} samples on the "
              f"test set; paper: {paper.SOURCE}")
    if not runs:
        return f"{legend}." + gap_sentence(table)
    return (f"{finished} of the {len(states)} runs below {verb(finished)} recorded; {unfinished} more "
            f"{verb(unfinished)} unfinished ({legend})." + gap_sentence(table))


def repository_url(root: Path = REPO) -> str:
    """``repository.url`` of ``_config.yml``: the one place the repository's address is written."""
    import yaml

    config = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"].rstrip("/")


def readme_block(results: Path | None = None) -> str:
    """The README's results table with its markers, links relative to the repository root."""
    body = summary(results) + "\n\n" + markdown_table(results, link=lambda name: f"results/{name}")
    return f"{README_START}\n{body}\n{README_END}"


def book_block(results: Path | None = None) -> str:
    """The landing page's include file: the same table without its bookkeeping (training time,
    run names; the back matter has them)."""
    body = summary(results, runs=False) + "\n\n" + markdown_table(results, runs=False)
    return f"<!-- written by `python -m iwae_lib.chapters.tables --write` from results/ and iwae_lib/chapters/paper.py -->\n\n{body}\n"


def replace_readme_block(readme_text: str, block: str) -> str:
    """``readme_text`` with the text between the markers (markers included) replaced by ``block``."""
    start, end = readme_text.find(README_START), readme_text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no results table markers ({README_START!r} ... {README_END!r})")
    return readme_text[:start] + block + readme_text[end + len(README_END):]


def _targets(root: Path, readme_only: bool) -> dict:
    readme = root / "README.md"
    targets = {readme: replace_readme_block(readme.read_text(encoding="utf-8"), readme_block(root / "results"))}
    if not readme_only:
        from iwae_lib.bookkeeping import runs_page

        targets[root / BOOK_TABLE] = book_block(root / "results")
        targets[root / runs_page.RUNS_TABLE] = runs_page.book_block(root / "results", root, repository_url(root))
    return targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iwae_lib.chapters.tables", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="rewrite README.md's table and book/_generated/{results,runs}.md")
    group.add_argument("--readme", action="store_true", help="rewrite README.md's table only")
    group.add_argument("--check", action="store_true", help="exit 1 if either is out of date")
    group.add_argument("--print", action="store_true", help="print the table")
    parser.add_argument("--root", type=Path, default=REPO, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    if args.print:
        print(markdown_table(args.root / "results"))
        return 0
    stale = []
    for path, text in _targets(args.root, readme_only=args.readme).items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python -m iwae_lib.chapters.tables --write): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
