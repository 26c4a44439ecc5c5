"""`python -m maskwatch`: the `maskwatch` command where its script is not on PATH (a venv not
activated); it was "'maskwatch' is a package and cannot be directly executed"."""

from maskwatch.cli import main

main()
