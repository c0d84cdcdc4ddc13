"""Built-in theseus plugins: the paper's replacing-rate schedulers (constant,
linear curriculum, eq. 6), the first-n successor builder (section 4.3), and the
pipeline stages. They register through the same entry points (see
``theseus_cli.plugin``) that a third-party plugin package would use."""
