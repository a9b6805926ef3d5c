"""Khana (خوانا): legible, searchable scans for the courts."""
__version__ = "0.1.0"
