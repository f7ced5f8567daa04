"""The audits: pure functions from rows to findings. None of them reads files or talks to git."""
