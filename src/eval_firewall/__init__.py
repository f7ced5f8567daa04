"""eval-firewall: audit eval sets against train sets before they are called production-ready."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("eval-firewall")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = ["load_config", "run_audits", "__version__"]


def __getattr__(name: str):
    # Imported on first use, so `eval-firewall --help` does not load the engine's libraries.
    if name == "load_config":
        from .config import load_config
        return load_config
    if name == "run_audits":
        from .engine import run_audits
        return run_audits
    raise AttributeError(f"module 'eval_firewall' has no attribute {name!r}")
