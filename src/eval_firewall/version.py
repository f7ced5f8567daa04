"""The installed package's version (``0.0.0`` when run from a source tree).

Its own module, so that a module of the package can read it without importing the package
root, which imports the engine and the config on first use.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("eval-firewall")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
