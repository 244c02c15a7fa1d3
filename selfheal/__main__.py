"""``python -m selfheal``: the same entry point as the ``selfheal`` script."""

import sys

from selfheal.cli import main

sys.exit(main())
