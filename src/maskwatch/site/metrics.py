"""Prometheus series of a site, each with a `camera` label, read from the cameras at scrape time.

`maskwatch run` is one process, so reading the live state at scrape time is exact: no counter
can drift between workers. People per label come from the database (today, UTC), so they carry
on across restarts.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from maskwatch.faces import PERSON_LABELS


class SiteCollector(Collector):
    def __init__(self, site) -> None:
        self.site = site

    def collect(self):
        up = GaugeMetricFamily("maskwatch_camera_up", "1 while the camera's stream sends frames", labels=["camera"])
        fps = GaugeMetricFamily("maskwatch_camera_fps", "Frames received per second", labels=["camera"])
        reconnects = GaugeMetricFamily("maskwatch_camera_reconnects", "Times the stream was lost and reopened",
                                       labels=["camera"])
        people = GaugeMetricFamily("maskwatch_camera_people_today", "People decided today (UTC), per voted label",
                                   labels=["camera", "label"])
        ratio = GaugeMetricFamily("maskwatch_camera_compliance_today",
                                  "Share of today's people wearing a mask properly (absent before the first)",
                                  labels=["camera"])
        for camera in self.site.cameras():
            name = camera["id"]
            up.add_metric([name], 1.0 if camera["connected"] else 0.0)
            fps.add_metric([name], camera["fps"])
            reconnects.add_metric([name], camera["reconnects"])
            today = camera["today"]
            for label in PERSON_LABELS:
                people.add_metric([name, label], today[label])
            if today["people"]:
                ratio.add_metric([name], today["with_mask"] / today["people"])
        yield from (up, fps, reconnects, people, ratio)
