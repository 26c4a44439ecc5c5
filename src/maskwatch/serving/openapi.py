"""What the OpenAPI document says /v1/detect and the live endpoints take and answer.

The handlers read raw requests (multipart or a bare image body) and build their own responses,
so FastAPI cannot infer these: they are written out here, and schemathesis checks them against
the running service (tests/test_api_fuzz.py).
"""

from __future__ import annotations

from maskwatch.faces import frame_schema

IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/webp", "image/tiff", "image/gif", "image/avif")
BINARY = {"type": "string", "format": "binary"}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}

ERROR_DESCRIPTIONS = {
    400: "Empty body, truncated or corrupt image, or a multipart upload that is not one file field `image`",
    404: "Nothing to show: no live source configured, or no frame yet",
    413: "Upload larger than --max-upload-mb, or an image over --max-pixels",
    415: "The body is not an image (PNG, JPEG, BMP, WebP, TIFF, GIF or AVIF)",
    500: "The annotated image could not be encoded",
}


# What any route may answer besides its own (security/access.py, the database's exception handler):
# the document listed 200, 400 and 422 for /v1/events, which viewers get 403 from.
ACCESS_RESPONSES = {
    401: {"description": "No credentials, or ones that are not (or no longer) valid",
          "content": {"application/json": {"schema": ERROR}}},
    403: {"description": "Not for this user, token or origin (a viewer's other cameras, an admin route, a "
                         "read-only token writing, a cross-site request)", "content": {"application/json": {"schema": ERROR}}},
    503: {"description": "The database cannot be read or written just now (Retry-After says when to try again)",
          "content": {"application/json": {"schema": ERROR}}},
}


def error_responses(*codes: int) -> dict:
    """OpenAPI responses for errors answered as JSON {"error": "..."}."""
    return {code: {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": ERROR}}}
            for code in codes}


def _frame_schema_for_openapi() -> dict:
    schema = frame_schema()
    schema.pop("$schema", None)  # OpenAPI 3.1 schemas use the document's dialect
    return schema


JPEG_RESPONSE = {200: {"description": "JPEG image", "content": {"image/jpeg": {"schema": BINARY}}}}

DETECT_RESPONSES = {
    200: {
        "description": "The faces and counts (JSON), or with `?annotate=1` the annotated JPEG",
        "content": {"application/json": {"schema": _frame_schema_for_openapi()}, "image/jpeg": {"schema": BINARY}},
        "headers": {"X-Maskwatch-Counts": {
            "description": "With `?annotate=1`: faces per class as a JSON object", "schema": {"type": "string"}}},
    },
    **error_responses(400, 413, 415, 500),
}

DETECT_BODY = {
    "requestBody": {
        "required": True,
        "description": "One image: a multipart form with the file in the field `image`, or the raw image bytes.",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["image"], "properties": {"image": BINARY},
                           "additionalProperties": False},
                "encoding": {"image": {"contentType": ", ".join(IMAGE_TYPES)}},
            },
            **{media_type: {"schema": BINARY} for media_type in (*IMAGE_TYPES, "application/octet-stream")},
        },
    }
}
