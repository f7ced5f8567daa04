"""Safe input and output: paths kept inside the repository, bounded YAML, inert terminal text."""
