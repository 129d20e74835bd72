"""The short name of :mod:`oxicache.integrations.settings`: ``import oxicache.settings`` gives
that very module (one state and one set of functions, whichever name imports it)."""

import sys

from .integrations import settings

sys.modules[__name__] = settings
