"""The short name of :mod:`oxicache.integrations.metrics`: ``import oxicache.metrics`` gives
that very module (one state and one set of functions, whichever name imports it)."""

import sys

from .integrations import metrics

sys.modules[__name__] = metrics
