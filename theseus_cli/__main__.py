"""``python -m theseus_cli`` = the ``theseus`` command."""

from theseus_cli.cli.app import main

main()
