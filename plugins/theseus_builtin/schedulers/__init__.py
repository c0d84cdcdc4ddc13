"""Built-in replacing-rate schedulers (entry-point group theseus.schedulers)."""
