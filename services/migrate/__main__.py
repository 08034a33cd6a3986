"""``python -m services.migrate``: see :mod:`services.migrate`."""

from services.migrate.migration import main

if __name__ == "__main__":
    main()
