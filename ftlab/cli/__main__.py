"""`python -m ftlab.cli` is `ftctl` (the daemon launches jobs this way)."""

import sys

from .main import main

sys.exit(main())
