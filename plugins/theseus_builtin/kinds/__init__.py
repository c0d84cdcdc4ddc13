"""Built-in task kinds: sequence classification, regression, token classification."""
