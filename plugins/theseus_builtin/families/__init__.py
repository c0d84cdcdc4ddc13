"""Built-in model families (entry-point group theseus.families)."""
