"""``python -m motifcore`` runs the command line (see :mod:`motifcore.cli`)."""

import sys

from .cli import main

sys.exit(main())
