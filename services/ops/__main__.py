"""``python -m services.ops``: see :mod:`services.ops`."""

import sys

from services.ops.restore import main

if __name__ == "__main__":
    sys.exit(main())
