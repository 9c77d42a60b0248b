"""The exceptions this package raises.

The original library raises ``RuntimeError`` for every failure of its C core; ours are subclasses of it, so
code that catches ``RuntimeError`` keeps working, and code that wants to tell failures apart can.
"""

import ctypes


class LiteError(RuntimeError):
    """Base class of every error raised by megenginelite."""


class ModelFormatError(LiteError):
    """The model file is not a model we can read: unknown format, truncated or corrupted."""


class UnsupportedOperatorError(LiteError):
    """The model uses an operator (or an operator mode) that has no lowering."""


class InvalidInputError(LiteError):
    """An input tensor has the wrong name, dtype or shape for the model."""


class DeviceError(LiteError):
    """A device (CUDA, TensorRT) was asked for but is not usable here."""


class LiteUsageError(LiteError):
    """An API call was made in the wrong state, e.g. ``forward`` before ``load``."""


class LiteMemoryError(LiteError, MemoryError):
    """Memory for a tensor could not be allocated: the shapes the model declares (or the caller sets) need more
    than this process may use. Also a ``MemoryError``, so code that handles that keeps working."""


class UnsupportedDTypeError(LiteError, KeyError):
    """A dtype that ``LiteDataType`` cannot represent (float64, int64, bool, ...).

    The original raised a bare ``KeyError`` from a lookup table here, so this is a ``KeyError`` as well as a
    ``LiteError``; unlike ``KeyError`` its ``str()`` is the plain message.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LiteArgumentError(ctypes.ArgumentError, TypeError):
    """An argument of a type the API cannot take (e.g. a list given where memory is expected).

    The original let ctypes reject these with ``ctypes.ArgumentError``; this is one (and a ``TypeError``).
    """


class RequestError(LiteError):
    """An inference request sent to a served model is malformed or does not fit the model (wrong input name,
    datatype or shape, bad JSON or binary lengths): the server answers it with HTTP 400 (413 when too large)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
