"""A whole site: many cameras from one YAML file, their events in a database, the API over them."""

from maskwatch.site.apprise_logs import quiet_apprise

quiet_apprise()  # before any module here imports apprise, which logs as it loads (apprise_logs.py)
