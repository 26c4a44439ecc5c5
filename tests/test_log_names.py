"""docs/deployment.md's table of the log's sources names every logger of `run` and `serve`, read off
the code, and no other: module moves renamed three (site.events' lines became site.event_sink's
and site.database's, the stop's site.stop's) while no page said which names a filter could match."""

import re

from maskwatch.runtime import STOP_LOGGER
from tests.conftest import ROOT
from tests.test_layers import PACKAGE, _module

# detect and batch print their warnings through logging's last resort, without the logger's name.
NAMELESS = {"maskwatch.atomic"}


def code_loggers() -> set[str]:
    """Each logger maskwatch's modules write to: their own (__name__), and the stop's."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "getLogger(__name__)" in text:
            names.add(_module(path))
        if "getLogger(STOP_LOGGER)" in text:
            names.add(STOP_LOGGER)
        for named in re.findall(r'getLogger\("(maskwatch\.[\w.]+)"\)', text):  # another module's, by name
            assert (PACKAGE.parent / (named.replace(".", "/") + ".py")).is_file(), (path, named)
            names.add(named)  # (site.event_writer writes under site.event_sink's, its lines' name before it)
    return names - NAMELESS


def documented_loggers() -> set[str]:
    page = (ROOT / "docs" / "deployment.md").read_text()
    section = page.split("\n## The log\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`([\w.]+)`", cell) if name.startswith("maskwatch.")}


def test_the_logs_sources_are_each_in_the_deployment_pages_table():
    assert STOP_LOGGER == "maskwatch.site.stop"
    assert {"maskwatch.site.event_sink", "maskwatch.site.database", "maskwatch.video.cameras"} <= code_loggers()
    assert documented_loggers() == code_loggers()
