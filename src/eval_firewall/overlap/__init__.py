"""The overlap stage: corpora, hit finders, paraphrase search and scoring, cached results."""
