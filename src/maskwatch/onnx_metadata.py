"""An ONNX file's metadata (its custom key-value pairs) read without loading the network.

A model loaded on first use (the classifier's night model) is still checked when its Classifier
is made or unpickled: ONNX Runtime reads metadata only by building a session (the weights in
memory), and `import onnx` takes seconds, so this walks the file's top-level protobuf fields and
skips the graph. The file's other fields are not checked here; ONNX Runtime reads them on load.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

# ModelProto's metadata_props and, inside each, StringStringEntryProto's key and value (onnx.proto).
METADATA_FIELD, KEY_FIELD, VALUE_FIELD = 14, 1, 2
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def read_metadata(path: Path | str) -> dict[str, str]:
    """The file's metadata_props as ONNX Runtime's custom_metadata_map gives them; a ValueError
    naming the file where it is not a protobuf message (not an ONNX model)."""
    props: dict[str, str] = {}
    with open(path, "rb") as file:
        try:
            for field, value in _fields(file, skip_except=METADATA_FIELD):
                if field == METADATA_FIELD:
                    entry = dict(_fields(io.BytesIO(value)))
                    props[_text(entry.get(KEY_FIELD, b""))] = _text(entry.get(VALUE_FIELD, b""))
        except ValueError as err:
            raise ValueError(f"{path}: not an ONNX model ({err})") from None
    return props


def _fields(stream: BinaryIO, skip_except: int | None = None):
    """(field number, value) of a protobuf message's top-level fields: length-delimited ones as bytes
    (skipped, as None, unless their number is skip_except, where that is given), others as None."""
    while (tag := _varint(stream, at_end_ok=True)) is not None:
        field, wire = tag >> 3, tag & 7
        if wire == VARINT:
            _varint(stream)
            yield field, None
        elif wire in (FIXED64, FIXED32):
            stream.seek(8 if wire == FIXED64 else 4, io.SEEK_CUR)
            yield field, None
        elif wire == LENGTH:
            length = _varint(stream)
            if skip_except is None or field == skip_except:
                value = stream.read(length)
                if len(value) != length:
                    raise ValueError(f"field {field} cut short")
                yield field, value
            else:
                stream.seek(length, io.SEEK_CUR)
                yield field, None
        else:
            raise ValueError(f"field {field} has wire type {wire}")


def _varint(stream: BinaryIO, at_end_ok: bool = False) -> int | None:
    value = shift = 0
    while byte := stream.read(1):
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("a number longer than 10 bytes")
    if at_end_ok and shift == 0:
        return None
    raise ValueError("cut short")


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", errors="replace")
