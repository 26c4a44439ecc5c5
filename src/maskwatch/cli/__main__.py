"""`python -m maskwatch.cli`: the `maskwatch` command, as the tests and benchmarks start it."""

from maskwatch.cli import main

main()
