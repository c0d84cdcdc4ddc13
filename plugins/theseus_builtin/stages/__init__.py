"""Built-in pipeline stages; each registers under the ``theseus.stages`` entry point."""
