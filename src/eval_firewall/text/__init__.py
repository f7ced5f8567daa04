"""Text for matching: normalization, number equivalence, answer matchers."""
