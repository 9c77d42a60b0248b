"""``python -m megenginelite``: the ``megenginelite`` command line (see ``megenginelite.cli``)."""

import sys

from .cli import main

sys.exit(main())
