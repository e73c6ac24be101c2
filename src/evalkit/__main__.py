"""``python -m evalkit``: the command line (as the ``evalkit`` command)."""

from evalkit.cli import main

raise SystemExit(main())
