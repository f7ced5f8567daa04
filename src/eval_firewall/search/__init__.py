"""Candidate search behind small interfaces, so a faster backend can replace one without touching audits."""
