"""Incremental audits: git revisions, what changed since the base, which findings are new."""
