"""The persistent cache: lowered, ONNX Runtime-optimized models kept across loads and processes.

A second load of the same model with the same input shapes skips lowering and most of ONNX Runtime's graph
optimization. Entries are ONNX files optimized at the "extended" level (no hardware-specific layouts, so a cache
file can move between machines) stored in one zip file; keys hash the model bytes, the input shapes and dtypes
and the ONNX Runtime version. Nothing in a cache file is executed or unpickled.
"""

from __future__ import annotations

import io
import os
import re
import threading
import zipfile

import onnxruntime as ort

from ..errors import LiteError
from ..graph import cpu

SAVED_LEVEL = "extended"
_ENTRY_NAME = re.compile(r"[0-9a-f]{32}\.onnx")


def cache_key(model_digest: str, shapes_key: tuple, optimization: str, rewrites: bool = True) -> str:
    import hashlib  # here, not at the top: importing the package does not load it (about 3 ms)

    # what the lowering and ONNX Runtime's layouts chose for this CPU (an entry made elsewhere may be wrong here)
    machine = (cpu.nchwc_block(), cpu.int8_products_saturate())
    text = repr((model_digest, shapes_key, optimization, rewrites, ort.__version__, machine))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class PersistentCache:
    """In-memory entries backed by a zip file; ``always_sync`` writes the file after every new entry."""

    def __init__(self, path: str, always_sync: bool = False):
        self.path = path
        self.always_sync = always_sync
        self._entries: dict[str, bytes] = {}
        self._lock = threading.Lock()
        if os.path.exists(path) and os.path.getsize(path) > 0:
            size = os.path.getsize(path)
            try:
                with zipfile.ZipFile(path) as archive:
                    for info in archive.infolist():
                        # Only what dump() writes: "<32 hex digits>.onnx", stored uncompressed and unencrypted (a
                        # compressed entry could inflate to any size). Names are dictionary keys, never paths.
                        if (_ENTRY_NAME.fullmatch(info.filename) and info.compress_type == zipfile.ZIP_STORED
                                and not info.flag_bits & 0x1 and info.file_size <= size):
                            self._entries[info.filename[:-5]] = archive.read(info)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
                    RuntimeError) as exc:
                raise LiteError(f"{path} is not a megenginelite persistent cache: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, onnx_bytes: bytes) -> None:
        with self._lock:
            self._entries[key] = onnx_bytes
        if self.always_sync:
            self.dump(self.path)

    def __len__(self) -> int:
        return len(self._entries)

    def dump(self, path: str) -> None:
        """Write every entry to ``path`` (a zip of ``<key>.onnx`` files)."""
        buffer = io.BytesIO()
        with self._lock, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for key, data in self._entries.items():
                archive.writestr(f"{key}.onnx", data)
        try:
            with open(path, "wb") as f:
                f.write(buffer.getvalue())
        except OSError as exc:
            raise LiteError(f"failed to open {path}: {exc}") from exc


_active: PersistentCache | None = None


def active_cache() -> PersistentCache | None:
    return _active


def set_active_cache(cache: PersistentCache | None) -> None:
    global _active
    _active = cache
