"""The theseus command line (Typer): the only layer that prints errors and exits."""
