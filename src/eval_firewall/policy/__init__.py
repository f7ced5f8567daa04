"""The gate's policy: what a pull request may change of its own check.

The policy is the base revision's config and waivers. :mod:`.diff` compares the head's with
them (pure: configs in, a list of :class:`~eval_firewall.findings.PolicyChange` out, each
loosening or tightening); :mod:`.effective` builds the config and waivers a run applies
(tightenings at once, loosenings only once approved) and the ``policy-change`` findings of
those still pending (pure too); :mod:`.load` reads the base's files from git and the trusted
overrides (the action's ``policy`` and ``max-limits`` inputs). Who approved a change is read
from GitHub by :mod:`eval_firewall.github.approval`.
"""
