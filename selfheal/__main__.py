"""``python -m selfheal``: the same entry point as the ``selfheal`` script (see it for the gc)."""

import gc
import sys

gc.disable()

from selfheal.cli import main  # noqa: E402

sys.exit(main())
