"""Loaded by schemathesis (SCHEMATHESIS_HOOKS): what a valid image body looks like.

The OpenAPI document can only say "binary" for an image; these strategies draw real images
(sample photos in every format the service reads), so that schema-valid requests really are
valid and the service must accept them.
"""

import cv2
import schemathesis
from hypothesis import strategies as st

from tests.conftest import SAMPLE

PHOTOS = [cv2.imread(str(p)) for p in sorted(SAMPLE.glob("images/*.png"))[:2]]
FORMATS = {"image/png": ".png", "image/jpeg": ".jpg", "image/bmp": ".bmp", "image/webp": ".webp",
           "image/tiff": ".tiff"}
ENCODED = {media_type: [cv2.imencode(suffix, photo)[1].tobytes() for photo in PHOTOS]
           for media_type, suffix in FORMATS.items()}

for media_type, images in ENCODED.items():
    schemathesis.openapi.media_type(media_type, st.sampled_from(images))
schemathesis.openapi.media_type("application/octet-stream",
                                st.sampled_from([b for images in ENCODED.values() for b in images]))
