"""Models: where a predecessor comes from (embedded, hub, directory), loading and
saving Hugging Face models and restructured successors."""
