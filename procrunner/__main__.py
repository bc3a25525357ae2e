"""``python -m procrunner``: the same as the ``procrunner`` command."""

import sys

from procrunner.cli import main

sys.exit(main())
