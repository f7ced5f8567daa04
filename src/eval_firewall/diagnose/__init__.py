"""Diagnostics on the user's own data: why one eval row was or was not flagged
(:mod:`.explain`), and what the overlap audit catches on planted copies (:mod:`.selftest`)."""
