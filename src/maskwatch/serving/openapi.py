"""What the OpenAPI document says /v1/detect and the live endpoints take and answer.

The handlers read raw requests (multipart or a bare image body) and build their own responses,
so FastAPI cannot infer these: they are written out here, and schemathesis checks them against
the running service (tests/test_api_fuzz.py).
"""

from __future__ import annotations

from maskwatch.faces import frame_schema

IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/webp", "image/tiff")
BINARY = {"type": "string", "format": "binary"}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}

ERROR_DESCRIPTIONS = {
    400: "Empty body, truncated or corrupt image, or a multipart upload that is not one file field `image`",
    404: "Nothing to show: no live source configured, or no frame yet",
    413: "Upload larger than --max-upload-mb, or an image over --max-pixels",
    415: "The body is not an image (PNG, JPEG, BMP, WebP or TIFF)",
    500: "The annotated image could not be encoded",
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
