"""Built-in successor types (entry-point group theseus.successors), each with its
torch-level helpers beside it."""
