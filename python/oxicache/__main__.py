"""``python -m oxicache``: the command line (:mod:`oxicache.admin.cli`)."""

from __future__ import annotations

import sys

from .admin.cli import main

if __name__ == "__main__":
    sys.exit(main())
