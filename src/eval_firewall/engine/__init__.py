"""The engine: read the datasets, prepare each audit's inputs, run the registry, decide pass
or fail.

The audits themselves are pure functions in :mod:`eval_firewall.audits`; this package is the
only place that reads files for them. :mod:`.run` is the loop, :mod:`.prepare` (with
:mod:`.overlap_search`) the input layer, :mod:`.severity` the config's say on each finding,
:mod:`.base` the ``--base`` attribution, :mod:`.waive` the waivers.
"""

from __future__ import annotations

from ..home import DEFAULT_CACHE
from .read import load_all, summarize
from .run import run_audits
from .severity import apply_severity, enabled_in, section_of
from .waive import load_waivers, waiver_file

__all__ = ["DEFAULT_CACHE", "apply_severity", "enabled_in", "load_all", "load_waivers",
           "run_audits", "section_of", "summarize", "waiver_file"]
