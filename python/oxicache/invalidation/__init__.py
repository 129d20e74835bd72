"""Removing entries: on demand (:func:`invalidate`, :func:`clear`) and after a successful
unsafe request (:func:`invalidates`, RFC 9111 §4.4)."""

from .explicit import clear, invalidate
from .unsafe import invalidates

__all__ = ["clear", "invalidate", "invalidates"]
