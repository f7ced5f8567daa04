"""eval-firewall: audit eval sets against train sets before they are called production-ready."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("eval-firewall")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

from .config import load_config  # noqa: E402
from .engine import run_audits  # noqa: E402

__all__ = ["load_config", "run_audits", "__version__"]
