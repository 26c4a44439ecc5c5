"""Home Assistant's MQTT discovery of a site's cameras (`mqtt: {discovery: true}`), so that a user
gets each camera's sensors without writing them by hand.

Each camera is a device (its `name`) with, in Home Assistant's per-entity layout
`<discovery_prefix>/<component>/<node_id>/<object_id>/config` (retained JSON):

    sensor  <camera>_<label>          people in view now per label: <prefix>/<camera>/<label>
    sensor  <camera>_<key>_today      today's people, in total and per label: <prefix>/<camera>/counts
    binary_sensor <camera>_available  the camera's stream up (connectivity): <prefix>/<camera>/available

The sensors are available while both the site's and the camera's `available` say "online"
(availability_mode: all): a site that died leaves only its last will to say so. The connectivity
sensor follows only the site's: tied to the camera's own topic it could never say "off".

`node_id` is the site's prefix with "/" as "_" (a topic level holds no "/"); a prefix that holds
"_" itself is escaped (node_id), since "shop/a" and "shop_a" shared one node and overwrote each
other's configs. `unique_id` and the device's identifier hold the prefix itself, so that the sweep
(mqtt.py) clears only a config whose topic and unique_id are exactly what this site publishes (under
its node, or the node of earlier versions), never another program's.
"""

from __future__ import annotations

import json
from typing import Iterable

from maskwatch.faces import PERSON_LABELS
from maskwatch.site.config import discovery_prefix_problem
from maskwatch.site.infrared import INFRARED, SUMMED_COLUMNS

# INFRARED: of the day's people, those seen on grey frames, judged by the night model (site/infrared.py)
SAID = {"with_mask": "with a mask", "without_mask": "without a mask",
        "mask_weared_incorrect": "with a mask worn incorrectly", "unassessable": "unassessable",
        INFRARED: "seen on grey (infrared) frames"}
ORIGIN = {"name": "maskwatch"}


ESCAPES = {"-": "--", "_": "-_", "/": "_"}  # a prefix-free code: each output reads back one way


def node_id(prefix: str) -> str:
    """The prefix as one topic level, one per prefix. A prefix without "_" keeps the node of earlier
    versions ("/" as "_"), so an upgraded site keeps its config topics. One with "_" is escaped and
    starts with "_", which no node of the first kind does (no prefix level is empty)."""
    if "_" not in prefix:
        return legacy_node_id(prefix)
    return "_" + "".join(ESCAPES.get(char, char) for char in prefix)


def legacy_node_id(prefix: str) -> str:
    """The node of versions before 2026-12-06: "shop/a" and "shop_a" were both "shop_a"."""
    return prefix.replace("/", "_")


def nodes(prefix: str) -> tuple[str, ...]:
    """Every node this site's configs may be under: its own, then that of earlier versions."""
    return tuple(dict.fromkeys((node_id(prefix), legacy_node_id(prefix))))


def config_filters(discovery_prefix: str, prefix: str) -> list[str]:
    """The topic filters that hold every config this site may have under `discovery_prefix`."""
    return [f"{discovery_prefix}/+/{node}/+/config" for node in nodes(prefix)]


def unique_id_prefix(prefix: str) -> str:
    """What every unique_id of this site's entities starts with."""
    return f"maskwatch:{prefix}/"


def camera_configs(discovery_prefix: str, prefix: str, camera: str, name: str, node: str | None = None
                   ) -> dict[str, str]:
    """The retained discovery configs of one camera: topic -> JSON payload (under `node`, by
    default the prefix's node_id)."""
    site_up, camera_up = f"{prefix}/available", f"{prefix}/{camera}/available"
    device = {"identifiers": [f"{unique_id_prefix(prefix)}{camera}"], "name": name, "manufacturer": "maskwatch",
              "model": "maskwatch"}
    both_up = {"availability": [{"topic": site_up}, {"topic": camera_up}], "availability_mode": "all"}
    entities: dict[tuple[str, str], dict] = {}
    for label in PERSON_LABELS:
        entities["sensor", label] = {"name": f"People {SAID[label]} in view",
                                     "state_topic": f"{prefix}/{camera}/{label}", "unit_of_measurement": "people",
                                     "state_class": "measurement", **both_up}
    for key in SUMMED_COLUMNS:  # as `<camera>/counts` has them
        # Back to 0 at the site's midnight: total_increasing reads a drop as a new day, not as negative people.
        entities["sensor", f"{key}_today"] = {
            # "judged": the decided alone, as the page's "People judged" (the unassessable have their own)
            "name": "People judged today" if key == "people" else f"People {SAID[key]} today",
            "state_topic": f"{prefix}/{camera}/counts", "value_template": f"{{{{ value_json.{key} }}}}",
            "unit_of_measurement": "people", "state_class": "total_increasing", **both_up}
    entities["binary_sensor", "available"] = {
        "name": "Stream", "state_topic": camera_up, "payload_on": "online", "payload_off": "offline",
        "device_class": "connectivity", "entity_category": "diagnostic", "availability": [{"topic": site_up}]}
    node = node_id(prefix) if node is None else node
    return {f"{discovery_prefix}/{component}/{node}/{camera}_{what}/config": json.dumps(
                {**config, "unique_id": f"{unique_id_prefix(prefix)}{camera}/{what}", "device": device,
                 "origin": ORIGIN}, separators=(",", ":"))
            for (component, what), config in entities.items()}


def camera_of(discovery_prefix: str, prefix: str, topic: str, payload: bytes) -> str | None:
    """The camera whose config this retained message is, when it is one this site's discovery
    published (its exact topic, under any of its nodes, and unique_id); None for anything else,
    another program's or another site's included."""
    try:
        config = json.loads(payload)
    except ValueError:
        return None
    unique_id = config.get("unique_id") if isinstance(config, dict) else None
    if not isinstance(unique_id, str) or not unique_id.startswith(unique_id_prefix(prefix)):
        return None
    camera, _, what = unique_id[len(unique_id_prefix(prefix)):].partition("/")
    if not what or "/" in what:
        return None
    for node in nodes(prefix):
        ours = camera_configs(discovery_prefix, prefix, camera, camera, node).get(topic)
        if ours is not None and json.loads(ours)["unique_id"] == unique_id:
            return camera
    return None


def marker(discovery_prefix: str, uncleared: Iterable[str] = ()) -> str:
    """The payload of `<prefix>/discovery` (retained): where this site's configs are, so that a later
    run with discovery off, or another discovery_prefix, finds them to clear. uncleared: other
    discovery prefixes where configs stay that the broker would not clear (its ACL), kept named so
    that the next connection tries them again (overwritten, they were never looked at again)."""
    said: dict = {"discovery_prefix": discovery_prefix}
    rest = sorted(set(uncleared) - {discovery_prefix})
    if rest:
        said["uncleared"] = rest
    return json.dumps(said, separators=(",", ":"))


def places_of(topics: Iterable[str]) -> list[str]:
    """The discovery prefixes of the config topics among `topics`, each once (a config topic is
    `<discovery prefix>/<component>/<node>/<object>/config`)."""
    return list(dict.fromkeys(topic.rsplit("/", 4)[0] for topic in sorted(topics) if topic.endswith("/config")))


def marked_prefixes(payload: bytes) -> list[str]:
    """The discovery prefixes a marker names, those that are none a site writes left out (never a
    wildcard: a filter made of one would be refused, and the connection closed)."""
    try:
        said = json.loads(payload)
    except ValueError:
        return []
    if not isinstance(said, dict):
        return []
    uncleared = said.get("uncleared")
    named = [said.get("discovery_prefix"), *(uncleared if isinstance(uncleared, list) else ())]
    return [prefix for prefix in dict.fromkeys(p for p in named if isinstance(p, str))
            if discovery_prefix_problem(prefix) is None]
