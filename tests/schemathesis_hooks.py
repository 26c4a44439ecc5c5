"""Loaded by schemathesis (SCHEMATHESIS_HOOKS): what valid requests look like where a JSON
Schema cannot say it.

The OpenAPI document can only say "binary" for an image; these strategies draw real images
(sample photos in every format the service reads), so that schema-valid requests really are
valid and the service must accept them. A report's two dates each have a schema, but not the
rule between them (from no later than to): report.csv queries that break it are left out of
the positive cases (the 400 they get is tested in test_report.py); the events' and the access
log's since and until alike.
"""

from datetime import date, datetime, timezone

import cv2
import schemathesis
from hypothesis import strategies as st

from maskwatch.site.trend import parse_since
from tests.conftest import SAMPLE

# At half size (about 200x150): the detector's time grows with the pixels, and POST /v1/detect at full
# size was 12 of the API fuzz run's 60 s on a loaded machine. Each still has faces found (2-3), so
# the answers' faces are checked against their schema as before.
PHOTOS = [cv2.resize(cv2.imread(str(p)), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
          for p in sorted(SAMPLE.glob("images/*.png"))[:2]]
FORMATS = {"image/png": ".png", "image/jpeg": ".jpg", "image/bmp": ".bmp", "image/webp": ".webp",
           "image/tiff": ".tiff"}
ENCODED = {media_type: [cv2.imencode(suffix, photo)[1].tobytes() for photo in PHOTOS]
           for media_type, suffix in FORMATS.items()}

for media_type, images in ENCODED.items():
    schemathesis.openapi.media_type(media_type, st.sampled_from(images))
schemathesis.openapi.media_type("application/octet-stream",
                                st.sampled_from([b for images in ENCODED.values() for b in images]))


@schemathesis.hook
def filter_query(ctx, query):
    if ctx.operation.path in ("/v1/events", "/v1/events.csv", "/v1/access-log") and query:
        return since_before_until(query)
    if ctx.operation.path != "/v1/report.csv" or not query:
        return True
    try:
        first = date.fromisoformat(query["from"]) if "from" in query else None
        last = date.fromisoformat(query["to"]) if "to" in query else datetime.now(timezone.utc).date()
    except (TypeError, ValueError):
        return True  # not dates: a negative case, to be refused
    if first is None:
        return True
    return first <= last


@schemathesis.hook
def filter_case(ctx, case):
    """The same rule in the coverage phase, which filter_query does not see: it sent the access log
    since 2000-01-01 until year 1, and took its 400 for a valid request refused."""
    if ctx.operation.path in ("/v1/events", "/v1/events.csv", "/v1/access-log") and case.query:
        return since_before_until(case.query)
    return True


def since_before_until(query) -> bool:
    """The events' and the access log's `since` and `until` each have a schema, not the rule between
    them (since no later than until): queries that break it are left out of the positive cases
    (their 400 is tested in test_events_paging.py and test_access_log.py)."""
    try:
        return parse_since(str(query["since"])) <= parse_since(str(query["until"]))
    except (KeyError, TypeError, ValueError):
        return True  # one of them absent, or not a time: refused or not, as the schema says


# The zone editor's check takes any string as `text` by its schema, but YAML the config would take
# under a camera only by the loader's rules (its refusals are tested in test_dashboard.py): a body
# the schema takes gets one of these texts, so that schema-valid requests really are valid.
ZONE_TEXTS = ["", "zones: {}\n", "zones:\n  door: [[0, 0], [1, 0], [1, 1]]\n",
              "zones:\n  a: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]]\nmotion:\n  threshold: 30\n  masks:\n"
              "    - [[0.8, 0], [1, 0], [1, 0.2]]\n"]


@schemathesis.hook
def map_body(ctx, body):
    if ctx.operation.path.endswith("/zones/check") and isinstance(body, dict) and set(body) == {"text"} \
            and isinstance(body["text"], str):
        return {"text": ZONE_TEXTS[len(body["text"]) % len(ZONE_TEXTS)]}
    return body
