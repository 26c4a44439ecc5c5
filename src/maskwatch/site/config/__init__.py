"""The site config: one YAML file of cameras (Frigate's shape), validated whole at start.

    defaults:            # any camera setting, for every camera that does not set it
      fps: 5
    cameras:
      entrance:          # the camera's id: letters, digits, _ and -
        name: Front door
        source: rtsp://viewer:${CAM1_PASSWORD}@10.0.0.5:554/stream1
        zones:
          door: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]   # polygon, 0-1 of width and height
        hours: ["mon-fri 08:00-18:00"]                # alerts fire only then (default: always)
    timezone: Europe/Berlin  # of opening hours and the compliance chart's days (default: local time)
    alerts:
      compliance:        # under 80 % masked over 15 minutes at the door (the whole 95 % interval)
        - {camera: entrance, zone: door, below: 80, minutes: 15}

Every problem is collected, not just the first: `load_site_config` raises SiteConfigError with
one line per problem, each naming the camera and the field.

Its modules, each one concern, import one way (lowest first): section; shapes; cameras, server,
alerts, reports, mqtt; site (the whole file's model); problems (the wording of errors);
yaml_text and environment (reading); loading (load_site_config and the other ways in).
Every name is importable from here, as from the one module this was.
"""

from __future__ import annotations

from maskwatch.site.config.alerts import (AlertsConfig, AlertTargetConfig, ComplianceRuleConfig, NotifyConfig,
                                          WebhookConfig)
from maskwatch.site.config.cameras import (CAMERA_ID, OWN_SETTINGS, CameraConfig, CameraSettings, MotionConfig,
                                           with_absolute_files)
from maskwatch.site.config.environment import ENV_VAR
from maskwatch.site.config.loading import (DRAWN_SETTINGS, SiteUsersView, camera_with_shapes, load_site_config,
                                           load_site_users_view, one_camera_site)
from maskwatch.site.config.mqtt import MQTT_HOST, MQTT_PREFIX, MqttConfig, discovery_prefix_problem
from maskwatch.site.config.problems import MOST_SHOWN, SECRET_FIELDS, SiteConfigError
from maskwatch.site.config.reports import REPORT_TIME, ReportConfig
from maskwatch.site.config.section import Section, without_blanks
from maskwatch.site.config.server import RuntimeConfig, ServerConfig, StorageConfig, TlsConfig, check_proxies
from maskwatch.site.config.shapes import (MOST_CORNERS, MOST_SHAPES, Point, in_pixels, polygon_problem, too_many,
                                          too_many_corners)
from maskwatch.site.config.site import SiteConfig, local_zone_name, reference_problems
from maskwatch.site.config.yaml_text import LARGEST_CONFIG, MOST_CONFIG_DEPTH, MOST_CONFIG_ENTRIES

# The private helpers too, as they were importable from the one module (tests may reach them).
from maskwatch.site.config.alerts import _apprise_url  # noqa: F401
from maskwatch.site.config.cameras import _is_relative_file, _mistyped_url  # noqa: F401
from maskwatch.site.config.environment import _substitute_env  # noqa: F401
from maskwatch.site.config.loading import _storage_beside, _storage_places  # noqa: F401
from maskwatch.site.config.problems import _describe, _holds_secret, _place, _shown  # noqa: F401
from maskwatch.site.config.site import _raw_references  # noqa: F401
from maskwatch.site.config.yaml_text import (_UniqueKeyLoader, _expanded_entries, _read_yaml,  # noqa: F401
                                             _yaml_document, _yaml_hint, _yaml_problem)

__all__ = [
    "CAMERA_ID", "DRAWN_SETTINGS", "ENV_VAR", "LARGEST_CONFIG", "MOST_CONFIG_DEPTH", "MOST_CONFIG_ENTRIES",
    "MOST_CORNERS", "MOST_SHAPES", "MOST_SHOWN", "MQTT_HOST", "MQTT_PREFIX", "OWN_SETTINGS", "REPORT_TIME",
    "SECRET_FIELDS", "AlertTargetConfig", "AlertsConfig", "CameraConfig", "CameraSettings", "ComplianceRuleConfig",
    "MotionConfig", "MqttConfig", "NotifyConfig", "Point", "ReportConfig", "RuntimeConfig", "Section", "ServerConfig",
    "SiteConfig", "SiteConfigError", "SiteUsersView", "StorageConfig", "TlsConfig", "WebhookConfig",
    "camera_with_shapes", "check_proxies", "discovery_prefix_problem", "in_pixels", "load_site_config",
    "load_site_users_view", "local_zone_name", "one_camera_site", "polygon_problem", "reference_problems",
    "too_many", "too_many_corners", "with_absolute_files", "without_blanks",
]
