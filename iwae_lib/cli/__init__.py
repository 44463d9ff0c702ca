"""Command line: ``python -m iwae_lib train | evaluate | show | runs | record`` (also ``iwae``).

    python -m iwae_lib train --out runs/iwae_k5 --k 5 --objective iwae --epochs 328
    python -m iwae_lib train --out runs/iwae_k5 --resume          # continue after a stop
    python -m iwae_lib evaluate runs/iwae_k5 --k 5000 --split test
    python -m iwae_lib show runs/iwae_k5
    python -m iwae_lib runs                       # the book's runs: status, hours, commands
    python -m iwae_lib runs --missing-commands    # one command per line, for a batch scheduler

``train`` has one flag per field of :class:`iwae_lib.config.TrainConfig`, generated from
the dataclass so the two never drift apart. Options are resolved in this order, later
ones winning: the dataclass defaults, the stored config of the run (with ``--resume``),
``--recipe NAME`` (iwae_lib/recipes.py), ``--config FILE.json``, the flags given. The configuration is validated before any data
is read, and every problem a person can fix ends as one ``error: ...`` line.

Exit status: 0 success, 1 a failure while running (missing data, diverged training,
damaged checkpoint; ``runs --check``: runs missing), 2 a usage or configuration error,
130 interrupted (Ctrl-C).

One module per job: ``flags`` (TrainConfig <-> flags), ``train``, ``evaluate``, ``show``
(one run directory), ``runs`` (the book's list of runs), ``common`` (errors, run files).
"""

from __future__ import annotations

import argparse
import os
import sys

from iwae_lib.cli import evaluate, runs, show, train
from iwae_lib.cli.common import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, _Parser,  # noqa: F401
                                 read_json)
from iwae_lib.cli.flags import FIELD_HELP, add_config_flags, flag_name  # noqa: F401
from iwae_lib.cli.show import history_table, summarize_run  # noqa: F401
from iwae_lib.cli.train import build_train_config  # noqa: F401


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m iwae_lib",
                     description="Importance Weighted Autoencoders (Burda et al., 2015): train, evaluate, inspect runs.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (train, evaluate, show, runs):
        module.add_parser(commands)
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m iwae_lib`` and the ``iwae`` script; returns the exit status."""
    try:
        args = make_parser().parse_args(argv)
        status = args.handler(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
        return status
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (``runs --missing-commands | head``): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
        return 0
