"""``python -m fatools.testing DIR [NAME...]``: write stand-in models into the store DIR."""

import sys

from fatools.testing import main

sys.exit(main())
