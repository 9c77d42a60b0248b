"""Package-wide basics: version, log level, dtype tables.

``version`` / ``__version__`` is ``"1.13.0"``: the version of the MegEngine Lite API this package reproduces, which
is also what the original reports (so code that checks the version keeps working).  The distribution's own release
number is in the package metadata (``importlib.metadata.version("megenginelite")``).

Logging goes through the standard :mod:`logging` module, logger name ``"megenginelite"``.  ``set_log_level`` sets
that logger's level; the default is ERROR, as in the original.  Nothing is printed unless the application
configures logging (Python's last-resort handler still shows WARNING and above on stderr).
"""

from __future__ import annotations

import ctypes
import logging
import operator

from .errors import LiteArgumentError, LiteError
from .struct import MAX_DIM, LiteDataType, LiteLogLevel

__all__ = ["version", "__version__", "MAX_DIM", "set_log_level", "get_log_level", "ctype_to_lite_dtypes", "logger"]

version: str = "1.13.0"
__version__ = version

#: The package logger; ``set_log_level`` controls its level.
logger = logging.getLogger("megenginelite")

_LITE_TO_LOGGING = {
    LiteLogLevel.DEBUG: logging.DEBUG,
    LiteLogLevel.INFO: logging.INFO,
    LiteLogLevel.WARN: logging.WARNING,
    LiteLogLevel.ERROR: logging.ERROR,
}

if logger.level == logging.NOTSET:
    logger.setLevel(logging.ERROR)

#: ctypes element types and the LiteDataType they stand for (c_uint is taken as INT, as in the original).
ctype_to_lite_dtypes: dict[type, LiteDataType] = {
    ctypes.c_int: LiteDataType.LITE_INT,
    ctypes.c_uint: LiteDataType.LITE_INT,
    ctypes.c_float: LiteDataType.LITE_FLOAT,
    ctypes.c_ubyte: LiteDataType.LITE_UINT8,
    ctypes.c_byte: LiteDataType.LITE_INT8,
    ctypes.c_short: LiteDataType.LITE_INT16,
    ctypes.c_ushort: LiteDataType.LITE_UINT16,
}


def set_log_level(level: int) -> None:
    """Set the log level: a LiteLogLevel or an int 0 (DEBUG) .. 3 (ERROR).

    Other ints raise LiteError "unkonw loglevel"; non-integers raise LiteArgumentError (a ctypes.ArgumentError).
    """
    try:
        value = operator.index(level)
    except TypeError:
        raise LiteArgumentError(
            f"argument 1: TypeError: wrong type (log level must be an int or LiteLogLevel, got {type(level).__name__})"
        ) from None
    if value not in _LITE_TO_LOGGING:
        raise LiteError(f"Error: unkonw loglevel {value} (expected 0..3 or a LiteLogLevel)")
    logger.setLevel(_LITE_TO_LOGGING[LiteLogLevel(value)])


def get_log_level() -> LiteLogLevel:
    """The current log level, read from the ``megenginelite`` logger."""
    level = logger.getEffectiveLevel()
    if level <= logging.DEBUG:
        return LiteLogLevel.DEBUG
    if level <= logging.INFO:
        return LiteLogLevel.INFO
    if level <= logging.WARNING:
        return LiteLogLevel.WARN
    return LiteLogLevel.ERROR
