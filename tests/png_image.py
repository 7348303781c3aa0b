"""The pixel size of a PNG file, read from its header (the figures the tests check)."""

from __future__ import annotations

import struct
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels of the PNG at ``path``; fails on a file that is not a PNG."""
    data = Path(path).read_bytes()
    assert data[:8] == SIGNATURE, f"{path} is not a PNG file"
    return struct.unpack(">II", data[16:24])
