"""``python -m fluoroscope`` runs the command line."""

from fluoroscope.cli import main

main()
