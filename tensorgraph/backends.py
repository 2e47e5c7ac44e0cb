"""Moved to `tensorgraph.draw.backends`; this name stays for old imports.

`tensorgraph.backends` *is* that module (the same object, so that monkeypatching
either name patches both).
"""
import sys

from .draw import backends as _backends

sys.modules[__name__] = _backends
