"""A whole site: many cameras from one YAML file, their events in a database, the API over them."""
