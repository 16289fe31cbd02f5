"""Read one small file out of a large .tgz quickly.

``tarfile`` parses every member header in Python. aws-cdk-lib's jsii bundle has tens of thousands of
members, so finding one file that way cost 1.4 s of every synth. Here the gzip stream is decompressed in
large chunks (in C) and scanned for the member's ustar header, which takes about a tenth of that.
"""

from __future__ import annotations

import zlib
from pathlib import Path

_BLOCK = 512
_NAME_FIELD = 100  # ustar: the name is the header's first 100 bytes, NUL-padded
_SIZE_FIELD = slice(124, 136)  # octal byte count
_MAGIC_FIELD = slice(257, 262)
_CHUNK = 1 << 20


def read_member(archive: Path, name: str) -> bytes:
    """The content of member ``name`` (which must fit ustar's 100-byte name field) of ``archive``."""
    wanted = name.encode()
    if len(wanted) >= _NAME_FIELD:
        raise ValueError(f"{name}: longer than a ustar name field; use tarfile")
    header_start = wanted + b"\0"
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper
    stream = bytearray()  # decompressed bytes from absolute offset `base` on
    base = 0
    with archive.open("rb") as compressed:
        while chunk := compressed.read(_CHUNK):
            stream += decompressor.decompress(chunk)
            found = _find_header(stream, base, header_start)
            if found is not None:
                while len(stream) < found + _BLOCK or len(stream) < found + _BLOCK + _size(stream, found):
                    more = compressed.read(_CHUNK)
                    if not more:
                        break
                    stream += decompressor.decompress(more)
                size = _size(stream, found)
                return bytes(stream[found + _BLOCK : found + _BLOCK + size])
            # Keep the last block: a header that starts there may not be complete yet.
            dropped = max(len(stream) - _BLOCK, 0)
            base += dropped
            del stream[:dropped]
    raise KeyError(f"{name} is not in {archive.name}")


def _find_header(stream: bytearray, base: int, header_start: bytes) -> int | None:
    """Offset in ``stream`` of a block-aligned ustar header naming the member, if any."""
    at = stream.find(header_start)
    while at >= 0:
        aligned = (base + at) % _BLOCK == 0
        if aligned and stream[at + _MAGIC_FIELD.start : at + _MAGIC_FIELD.stop] == b"ustar":
            return at
        at = stream.find(header_start, at + 1)
    return None


def _size(stream: bytearray, header: int) -> int:
    field = bytes(stream[header + _SIZE_FIELD.start : header + _SIZE_FIELD.stop])
    return int(field.rstrip(b"\0 ").decode() or "0", 8)
