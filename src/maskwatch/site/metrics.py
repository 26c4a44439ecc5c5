"""Prometheus series of a site, each with a `camera` label, read from the cameras at scrape time.

`maskwatch run` is one process, so reading the live state at scrape time is exact: no counter
can drift between workers. People per label come from the database (today in the site's timezone), so they carry
on across restarts. Counts since the start are counters (`..._total`), so that Prometheus's rate()
and increase() read a restart's fall to 0 as a reset; the rest are gauges.
"""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from maskwatch.faces import CLASSES, PERSON_LABELS
from maskwatch.site.infrared import INFRARED, INFRARED_DOCS, NIGHT_WORDS
from maskwatch.site.prevalence import compliance_estimate


class SiteCollector(Collector):
    def __init__(self, site) -> None:
        self.site = site

    def collect(self):
        up = GaugeMetricFamily("maskwatch_camera_up", "1 while the camera's stream sends frames", labels=["camera"])
        fps = GaugeMetricFamily("maskwatch_camera_fps", "Frames received per second", labels=["camera"])
        # Beside the stream's rate, so that a rule can tell a stream too slow for the analysis asked of it.
        fps_target = GaugeMetricFamily("maskwatch_camera_fps_target", "Frames analysed per second, as configured",
                                       labels=["camera"])
        # Prometheus's own naming: time() - it is how long the camera has sent nothing (absent before a frame).
        last_frame = GaugeMetricFamily("maskwatch_camera_last_frame_timestamp_seconds", "Unix time of the stream's "
                                       "last frame", labels=["camera"])
        reconnects = CounterMetricFamily("maskwatch_camera_reconnects", "Tries to open the stream again since the start: "
                                         "after it was lost, and each failed one", labels=["camera"])
        # unassessable is among the labels: "People decided today" had a sum over them exceed the API's people.
        people = GaugeMetricFamily("maskwatch_camera_people_today", "People today (since midnight in the site's "
                                   "timezone) per voted label: three classes decided, and unassessable, not decided",
                                   labels=["camera", "label"])
        # Its own series, not a label of people_today: a sum over those labels stays today's people.
        infrared = GaugeMetricFamily("maskwatch_camera_people_infrared_today", "Of today's people (judged or not), "
                                     f"those seen on grey (infrared) frames, {NIGHT_WORDS} "
                                     f"({INFRARED_DOCS})", labels=["camera"])
        ratio = GaugeMetricFamily("maskwatch_camera_compliance_today",
                                  "Share of today's people wearing a mask properly, corrected for the classifier's "
                                  "confusions (absent before the first)", labels=["camera"])
        low = GaugeMetricFamily("maskwatch_camera_compliance_today_low",
                                "Lower end of the 95 % interval of today's compliance", labels=["camera"])
        high = GaugeMetricFamily("maskwatch_camera_compliance_today_high",
                                 "Upper end of the 95 % interval of today's compliance", labels=["camera"])
        # The writer's queue (site/event_writer.py): a database away shows here, and what it cost.
        waiting = GaugeMetricFamily("maskwatch_camera_people_waiting", "People waiting in memory to be stored (the "
                                    "database refusing or not answering)", labels=["camera"])
        dropped = CounterMetricFamily("maskwatch_camera_people_dropped", "People dropped unstored since the start, "
                                      "the oldest waiting past 1000", labels=["camera"])
        for camera in self.site.cameras():
            name = camera["id"]
            up.add_metric([name], 1.0 if camera["connected"] else 0.0)
            fps.add_metric([name], camera["fps"])
            fps_target.add_metric([name], camera["fps_target"])
            reconnects.add_metric([name], camera["reconnects"])
            waiting.add_metric([name], camera["people_waiting"])
            dropped.add_metric([name], camera["people_dropped"])
            if camera["last_frame_at"] is not None:
                last_frame.add_metric([name], camera["last_frame_at"])
            today = camera["today"]
            if today is None:  # the database cannot be read: the cameras' own series still go out
                continue
            for label in PERSON_LABELS:
                people.add_metric([name, label], today[label])
            infrared.add_metric([name], today.get(INFRARED, 0))
            estimate = compliance_estimate({label: today[label] for label in CLASSES})
            if estimate:  # as the API shows them (the interval rounded outwards): the chart's red and the gauge agree
                shown = estimate.as_dict()
                ratio.add_metric([name], shown["compliance"])
                low.add_metric([name], shown["compliance_low"])
                high.add_metric([name], shown["compliance_high"])
        yield from (up, fps, fps_target, reconnects, waiting, dropped, people, infrared, ratio, low, high)
        if last_frame.samples:  # (none before a camera's first frame)
            yield last_frame
        # Deliveries: a receiver that is down or a broker that is misnamed shows here, not only in the log.
        stats = self.site.alerts.stats
        alerts = CounterMetricFamily("maskwatch_webhook_alerts", "Webhook alerts since the start, by outcome "
                                     "(failed: every retry failed; dropped: the queue was full)", labels=["outcome"])
        for outcome in ("sent", "failed", "retried", "dropped"):
            alerts.add_metric([outcome], getattr(stats, outcome))
        yield alerts
        if self.site.notifications is not None:
            notified = CounterMetricFamily("maskwatch_notify_alerts", "Messages (alerts.notify) since the start, by "
                                           "outcome (failed: every retry failed; dropped: the queue was full)",
                                           labels=["outcome"])
            for outcome in ("sent", "failed", "retried", "dropped"):
                notified.add_metric([outcome], getattr(self.site.notifications.stats, outcome))
            yield notified
        if self.site.reports is not None:
            reported = CounterMetricFamily("maskwatch_report_messages", "Scheduled reports' messages since the start, "
                                           "one per URL, by outcome (failed: every retry failed)", labels=["outcome"])
            for outcome in ("sent", "failed", "retried", "dropped"):
                reported.add_metric([outcome], getattr(self.site.reports.sender.stats, outcome))
            yield reported
        if self.site.mqtt is not None:
            yield GaugeMetricFamily("maskwatch_mqtt_connected", "1 while the MQTT broker is connected",
                                    value=1.0 if self.site.mqtt.status()["connected"] else 0.0)
