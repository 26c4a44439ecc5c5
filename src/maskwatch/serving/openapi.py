"""What the OpenAPI document says /v1/detect and the live endpoints take and answer.

The handlers read raw requests (multipart or a bare image body) and build their own responses,
so FastAPI cannot infer these: they are written out here, and schemathesis checks them against
the running service (tests/test_api_fuzz.py).
"""

from __future__ import annotations

from maskwatch.faces import frame_schema
from maskwatch.serving.uploads import EMPTY_BODY, NOT_AN_IMAGE

IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/webp", "image/tiff", "image/gif", "image/avif")
BINARY = {"type": "string", "format": "binary"}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}

ERROR_DESCRIPTIONS = {
    400: "Empty body, truncated or corrupt image, or a multipart upload that is not one file field `image`",
    404: "Nothing to show: no live source configured, or no frame yet",
    408: "The upload's body stalled: nothing of it came for 60 s",
    413: "Upload larger than --max-upload-mb, an image over --max-pixels, or a JPEG of over 100 scans",
    415: "The body is not an image (PNG, JPEG, BMP, WebP, TIFF, GIF or AVIF)",
    500: "The annotated image could not be encoded",
}


# What any route may answer besides its own (security/access.py, the database's exception handler):
# the document listed 200, 400 and 422 for /v1/events, which viewers get 403 from.
# The examples are the answers of a server with users to a request without credentials and to a
# read-only token's POST (tests/test_security.py).
ACCESS_RESPONSES = {
    401: {"description": "No credentials, or ones that are not (or no longer) valid",
          "content": {"application/json": {"schema": ERROR, "example": {
              "error": "log in first (POST /login) or send 'Authorization: Bearer TOKEN'"}}}},
    403: {"description": "Not for this user, token or origin (a viewer's other cameras, an admin route, a "
                         "read-only token writing, a cross-site request)",
          "content": {"application/json": {"schema": ERROR, "example": {"error": "this API token is read-only"}}}},
    503: {"description": "The database cannot be read or written just now, or has not answered a read for a few "
                         "seconds (a server that hangs: the error names it; Retry-After says when to try again)",
          "content": {"application/json": {"schema": ERROR}}},
}


# What /v1/detect answers, word for word (tests/test_serve.py posts each case): the 413's limit is
# the default --max-upload-mb.
DETECT_ERROR_EXAMPLES = {
    400: EMPTY_BODY,
    413: "upload exceeds the limit of 10 MiB",
    415: NOT_AN_IMAGE,
    500: "could not encode the annotated image as JPEG",
}


def error_responses(*codes: int, examples: dict[int, str] | None = None) -> dict:
    """OpenAPI responses for errors answered as JSON {"error": "..."}, with an example answer each
    where `examples` has one."""
    examples = examples or {}
    return {code: {"description": ERROR_DESCRIPTIONS[code],
                   "content": {"application/json": {"schema": ERROR} | (
                       {"example": {"error": examples[code]}} if code in examples else {})}}
            for code in codes}


# FastAPI's 422 answer, a `detail` list, also carries the one-line `error` (app.py's handler).
VALIDATION_ERROR = {
    "title": "HTTPValidationError", "type": "object", "required": ["error", "detail"],
    "properties": {"error": {"type": "string", "description": "The problems in one line, naming each parameter"},
                   "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}},
}
VALIDATION_EXAMPLE = {
    "error": "query parameter 'anotate': not a parameter of this endpoint, which takes: annotate",
    "detail": [{"type": "extra_forbidden", "loc": ["query", "anotate"], "input": "1",
                "msg": "not a parameter of this endpoint, which takes: annotate"}],
}


def document_validation_errors(document: dict) -> dict:
    """The OpenAPI document with every 422 as app.py answers it (`error` beside FastAPI's `detail`),
    /v1/detect's 422 with an example, and every other refusal's body said: app.py answers each as
    JSON `{"error": ...}`, but a route's own description of a status (the admin, login and two-step
    routes' 400, 403, 409, 429, 503) replaced the shared one with its content, so a client generated
    from the document read those answers as bodiless."""
    schemas = document.get("components", {}).get("schemas", {})
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"] = VALIDATION_ERROR
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items() if isinstance(operation, dict) else ():
                if status[:1] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": ERROR}}
    detect = document.get("paths", {}).get("/v1/detect", {}).get("post", {})
    if "422" in detect.get("responses", {}):
        detect["responses"]["422"]["content"]["application/json"]["example"] = VALIDATION_EXAMPLE
    return document


def _frame_schema_for_openapi() -> dict:
    schema = frame_schema()
    schema.pop("$schema", None)  # OpenAPI 3.1 schemas use the document's dialect
    return schema


JPEG_RESPONSE = {200: {"description": "JPEG image", "content": {"image/jpeg": {"schema": BINARY}}}}

# A real answer (the sample's maksssksksss129.png, one face of three kept): the frame schema's shape.
FRAME_EXAMPLE = {
    "width": 400, "height": 295, "detected": True,
    "faces": [{"box": [243.67, 40.82, 270.36, 70.0], "label": "with_mask",
               "probabilities": {"with_mask": 1.0, "without_mask": 0.0, "mask_weared_incorrect": 0.0},
               "score": 0.5291}],
    "counts": {"with_mask": 1, "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0},
}

DETECT_RESPONSES = {
    200: {
        "description": "The faces and counts (JSON: the frame schema, as a line of `maskwatch detect`'s "
                       "detections.jsonl without frame, name and time), or with `?annotate=1` the annotated JPEG",
        "content": {"application/json": {"schema": _frame_schema_for_openapi(), "example": FRAME_EXAMPLE},
                    "image/jpeg": {"schema": BINARY}},
        "headers": {"X-Maskwatch-Counts": {
            "description": "With `?annotate=1`: faces per class as a JSON object", "schema": {"type": "string"}}},
    },
    **error_responses(400, 408, 413, 415, 500, examples=DETECT_ERROR_EXAMPLES),
}

DETECT_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "One image, PNG, JPEG, WebP, BMP, TIFF, GIF (its first frame) or AVIF: a multipart form whose one "
            "field, `image`, is the file (`curl -F image=@photo.jpg`), or the image's bytes as the body "
            "(`curl --data-binary @photo.jpg`). The format is read from the bytes, whatever the Content-Type "
            "says; base64 text is refused. A photo with an EXIF orientation (a phone's) is turned upright "
            "first: `width`, `height` and the boxes are those of the upright image."),
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


# How a program other than a browser proves who it is (security/access.py); a browser's session
# cookie is the dashboard's affair. Undocumented, a generated client had no place for the token.
TOKEN_SCHEME = {
    "type": "http", "scheme": "bearer",
    "description": "An API token, `Authorization: Bearer TOKEN`: `maskwatch tokens add NAME` prints one "
                   "(--scope full, or read: GET only, and the POSTs marked `x-maskwatch-reads-only`: {reads}). "
                   "A server with no users yet answers on loopback without one."}


def document_security(document: dict, open_server: bool) -> dict:
    """A copy of the document that says which routes need the token: every one but the public
    ones, and none needs it on an open server (no users yet, loopback only); and which POSTs a
    read-scope token may call, as the scope check reads them."""
    from maskwatch.security.route_access import ACCESS, READS_ONLY

    document = {**document, "paths": {path: dict(operations) for path, operations in document.get("paths", {}).items()}}
    needed = [{"token": []}, {}] if open_server else [{"token": []}]
    reads = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                operations[method] = operation | {"security": [] if operation.get(ACCESS) == "public" else needed}
                if operation.get(READS_ONLY) and method != "get":
                    reads.append(f"{method.upper()} {path}")
    scheme = TOKEN_SCHEME | {"description": TOKEN_SCHEME["description"].format(reads=", ".join(reads) or "none")}
    document["components"] = {**document.get("components", {}), "securitySchemes": {"token": scheme}}
    return document
