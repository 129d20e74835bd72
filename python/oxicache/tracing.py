"""The short name of :mod:`oxicache.integrations.tracing`: ``import oxicache.tracing`` gives
that very module (one state and one set of functions, whichever name imports it)."""

import sys

from .integrations import tracing

sys.modules[__name__] = tracing
