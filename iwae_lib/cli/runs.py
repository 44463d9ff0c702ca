"""``python -m iwae_lib runs``: the book's runs with status, hours left and the command that
records each; ``record NAME``: record one of them into results/ (any kind, resumable).

    python -m iwae_lib runs                      the table
    python -m iwae_lib runs --missing-commands   only the commands, one per line (not of runs training now)
    python -m iwae_lib runs --check              exit 1 with the build's message unless all are recorded
    python -m iwae_lib runs --long               the same for the long runs the book does not wait for
"""

from __future__ import annotations

import dataclasses
import sys

from iwae_lib.cli.common import EXIT_FAILURE, UsageError


def current_statuses(long: bool = False):
    """([RunStatus], Paces) of the book's catalog (``long``: of its long runs) in the results folder."""
    from iwae_lib import chapters
    from iwae_lib.chapters import catalog
    from iwae_lib.bookkeeping import pace, status

    results = chapters.results_dir()
    root = "results" if results == (chapters.repo_root() / chapters.RESULTS).resolve() else str(results)
    paces = pace.measured(results)
    rows = status.statuses(catalog.long_runs() if long else catalog.book_runs(), results, paces)
    if root != "results":  # commands name the overriding results folder
        rows = [dataclasses.replace(s, command=s.command.replace("--out results/", f"--out {root}/", 1)) for s in rows]
    return rows, paces


def run_runs(args) -> int:
    from iwae_lib.bookkeeping import status

    rows, paces = current_statuses(args.long)
    if args.missing_commands:  # a run some process is training now is not handed out twice
        for s in rows:
            if s.command and s.trainer:
                print(f"{s.run.name}: left out, process {s.trainer} is training it now", file=sys.stderr)
            elif s.command:
                print(s.command)
        return 0
    if args.check:
        message = status.check_message(rows, paces)
        if message:
            print(message, file=sys.stderr)
            return EXIT_FAILURE
        print(f"all {len(rows)} {'long runs' if args.long else 'runs of the book'} are recorded")
        return 0
    print(status.table(rows, paces))
    if args.long:
        from iwae_lib import chapters

        print(choice_line(chapters.results_dir()))
    return 0


def choice_line(results) -> str:
    """Where the k=50 study's choice stands, under the long runs' table: the runs of the chosen
    recipe are listed only once it is made (catalog.MOONSHOT_CHOICE, set by hand)."""
    from iwae_lib.chapters import catalog

    if catalog.MOONSHOT_CHOICE is None:
        best = catalog.moonshot_best(results)
        if best is not None:
            return (f"the k=50 study's choice: its four runs are recorded, the best on validation is {best!r}: "
                    f"set catalog.MOONSHOT_CHOICE = {best!r} to list the Table 1 runs of that recipe")
        return ("the k=50 study's choice: not made yet (catalog.MOONSHOT_CHOICE, set once its four runs are "
                "recorded); the Table 1 runs of the chosen recipe are listed after that")
    runs = catalog.chosen_table1_runs()
    return (f"the k=50 study's choice: {catalog.MOONSHOT_CHOICE!r}; "
            + (f"{len(runs)} Table 1 runs with it are listed above" if runs else "the fast recipe: nothing to retrain"))


def run_record(args) -> int:
    """Train catalog runs into the results folder, resuming whatever is there."""
    from iwae_lib import chapters, data, training
    from iwae_lib.chapters import catalog, snapshots

    runs, results = {**catalog.book_runs(), **catalog.long_runs()}, chapters.results_dir()
    unknown = [name for name in args.names if name not in runs]
    if unknown:
        raise UsageError(f"not in the book's catalog: {', '.join(unknown)} (see 'python -m iwae_lib runs')")
    for name in args.names:
        run = runs[name]
        try:
            if run.kind == "snapshots":
                snapshots.train_segments(run.config, run.snapshot_epochs, results / name, progress=not args.no_progress)
            else:
                training.train(run.config, results / name, progress=not args.no_progress)
        except KeyboardInterrupt:
            print(f"\ninterrupted: run the same command again to continue {name}", file=sys.stderr)
            return 130
        except (data.DataError, FloatingPointError, RuntimeError, OSError, ValueError) as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"{name}: recorded in {results / name}")
    return 0


def add_parser(commands):
    """The ``runs`` and ``record`` subcommands."""
    runs = commands.add_parser("runs", help="the book's runs: status, hours left, commands that record them",
                               description="List every run the book shows (iwae_lib/chapters/catalog.py) with its "
                                           "status in results/, the estimated time left and its command.")
    mode = runs.add_mutually_exclusive_group()
    mode.add_argument("--missing-commands", action="store_true",
                      help="print only the commands of unrecorded runs, one per line (for GNU parallel, Slurm, ...)")
    mode.add_argument("--check", action="store_true",
                      help="exit with status 1 and say what to run unless every run is recorded (the book build)")
    runs.add_argument("--long", action="store_true",
                      help="the long runs instead (the paper's recipe, the k=50 study and its choice, Appendix D across k), "
                           "which the chapters show once recorded and the build does not wait for")
    runs.set_defaults(handler=run_runs)

    record = commands.add_parser("record", help="record runs of the book's catalog into results/ (resumable)",
                                 description="Train runs of the book's catalog into results/NAME, continuing "
                                             "whatever is there; the only way to record snapshot chains.")
    record.add_argument("names", nargs="+", metavar="NAME")
    record.add_argument("--no-progress", action="store_true", help="no progress bars")
    record.set_defaults(handler=run_record)
