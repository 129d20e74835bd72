"""Compatibility layers: the surfaces of peer caching libraries on the oxicache engine, so that
migrating is changing the imports."""
