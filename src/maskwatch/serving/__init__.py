"""`maskwatch serve`: the HTTP API and the live dashboard (needs the `serve` extra)."""
