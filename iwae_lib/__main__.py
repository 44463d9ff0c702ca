"""``python -m iwae_lib``: the command line of :mod:`iwae_lib.cli`."""

from iwae_lib.cli import main

raise SystemExit(main())
