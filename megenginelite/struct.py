"""Enums and plain configuration records of the MegEngine Lite API.

The original defines these as ``ctypes`` structures handed to its C library.  Ours are ordinary Python classes that
keep the same observable behaviour: integer fields only take integers (``TypeError`` otherwise), assigning a nested
record copies it, ``==`` is identity, and the reprs print the same dictionaries.
"""

from __future__ import annotations

import copy
import operator
from enum import IntEnum
from typing import Any, Iterable

import numpy as np

from .errors import LiteError, UnsupportedDTypeError

__all__ = [
    "MAX_DIM",
    "LiteBackend",
    "LiteDeviceType",
    "LiteDataType",
    "LiteTensorPhase",
    "LiteIOType",
    "LiteAlgoSelectStrategy",
    "LiteLogLevel",
    "LiteLayout",
    "LiteOptions",
    "LiteConfig",
    "LiteExtraConfig",
    "LiteIO",
    "LiteNetworkIO",
]

#: Largest number of dimensions a layout can have.
MAX_DIM = 7


class LiteBackend(IntEnum):
    """Inference backend; only the default one exists."""

    LITE_DEFAULT = 0


class LiteDeviceType(IntEnum):
    """Device a tensor lives on or a network runs on (2 and 6 are unused, as in the original)."""

    LITE_CPU = 0
    LITE_CUDA = 1
    LITE_ATLAS = 3
    LITE_NPU = 4
    LITE_CAMBRICON = 5
    LITE_DEVICE_DEFAULT = 7


class LiteDataType(IntEnum):
    """Element type of a tensor: HALF is float16, INT is int32."""

    LITE_FLOAT = 0
    LITE_HALF = 1
    LITE_INT = 2
    LITE_INT16 = 3
    LITE_INT8 = 4
    LITE_UINT8 = 5
    LITE_UINT16 = 6


class LiteTensorPhase(IntEnum):
    """Which side of the network a tensor name is looked up on (LITE_IO: either)."""

    LITE_IO = 0
    LITE_INPUT = 1
    LITE_OUTPUT = 2


class LiteIOType(IntEnum):
    """Whether an input/output carries values or only its shape."""

    LITE_IO_VALUE = 0
    LITE_IO_SHAPE = 1


class LiteAlgoSelectStrategy(IntEnum):
    """Algorithm selection strategy; the members are bit flags that can be OR-ed together."""

    LITE_ALGO_HEURISTIC = 1
    LITE_ALGO_PROFILE = 2
    LITE_ALGO_REPRODUCIBLE = 4
    LITE_ALGO_OPTIMIZED = 8


class LiteLogLevel(IntEnum):
    """Log verbosity, from DEBUG (most verbose) to ERROR (least)."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


# ---------------------------------------------------------------------------------------------------------------
# dtype tables

_LITE_TO_NP: dict[LiteDataType, type] = {
    LiteDataType.LITE_FLOAT: np.float32,
    LiteDataType.LITE_HALF: np.float16,
    LiteDataType.LITE_INT: np.int32,
    LiteDataType.LITE_INT16: np.int16,
    LiteDataType.LITE_INT8: np.int8,
    LiteDataType.LITE_UINT8: np.uint8,
    LiteDataType.LITE_UINT16: np.uint16,
}

# numpy scalar types (``np.float32``) accepted as a dtype
_NPTYPE_TO_LITE: dict[type, LiteDataType] = {v: k for k, v in _LITE_TO_NP.items()}

# ``np.dtype`` objects accepted as a dtype.  uint32 maps to INT as in the original (its ctypes table maps c_uint
# to LITE_INT), so a uint32 array is taken as int32 bits.
_NPDTYPE_TO_LITE: dict[np.dtype, LiteDataType] = {np.dtype(k): v for k, v in _NPTYPE_TO_LITE.items()}
_NPDTYPE_TO_LITE[np.dtype(np.uint32)] = LiteDataType.LITE_INT

# dtype names accepted as a dtype (no uint32 here, as in the original)
_STR_DTYPES: dict[np.dtype, LiteDataType] = {np.dtype(k): v for k, v in _NPTYPE_TO_LITE.items()}

# names MegEngine gives its dtypes, used in some error messages
_MGB_DTYPE_NAMES: dict[int, str] = {
    LiteDataType.LITE_FLOAT: "Float32",
    LiteDataType.LITE_HALF: "Float16",
    LiteDataType.LITE_INT: "Int32",
    LiteDataType.LITE_INT16: "Int16",
    LiteDataType.LITE_INT8: "Int8",
    LiteDataType.LITE_UINT8: "Uint8",
    LiteDataType.LITE_UINT16: "Uint16",
}


def _unsupported(dtype: Any) -> UnsupportedDTypeError:
    return UnsupportedDTypeError(
        f"{dtype!r} is not a supported lite data type; supported: float32, float16, int32, int16, int8, uint8, "
        "uint16 (convert e.g. float64/int64 arrays with .astype first)"
    )


def to_lite_dtype(dtype: Any) -> LiteDataType:
    """Normalise a dtype given the ways LiteLayout accepts it into a ``LiteDataType``.

    Falsy (None, 0) means LITE_FLOAT; then a LiteDataType, a dtype name ("float32", "uint8", ...), an
    ``np.dtype`` or a numpy scalar type (``np.int8``).  Unsupported numpy types raise UnsupportedDTypeError (a
    KeyError); other objects raise LiteError "unkonw data type".
    """
    if not isinstance(dtype, np.dtype) and not dtype:
        return LiteDataType.LITE_FLOAT
    if isinstance(dtype, LiteDataType):
        return dtype
    if isinstance(dtype, str):
        npd = np.dtype(dtype)  # TypeError for names numpy does not know, as in the original
        try:
            return _STR_DTYPES[npd]
        except KeyError:
            raise _unsupported(npd) from None
    if isinstance(dtype, np.dtype):
        try:
            return _NPDTYPE_TO_LITE[dtype]
        except KeyError:
            raise _unsupported(dtype) from None
    if isinstance(dtype, type):
        try:
            return _NPTYPE_TO_LITE[dtype]
        except KeyError:
            raise _unsupported(dtype) from None
    raise LiteError(f"unkonw data type: {dtype!r} (expected a LiteDataType, a dtype name or a numpy dtype)")


def lite_to_numpy_type(data_type: int) -> type:
    """The numpy scalar type of a LiteDataType value (ValueError for values that are not one)."""
    return _LITE_TO_NP[LiteDataType(data_type)]


def _index(value: Any) -> int:
    """An integer field value: ints, bools, IntEnums and numpy integers; TypeError for anything else."""
    return int(operator.index(value))


def _check_dims(shape: Iterable[Any]) -> list[int]:
    dims = [_index(d) for d in shape]
    assert len(dims) <= MAX_DIM, "Layout max dim is 7."
    return dims


class _IntField:
    """A descriptor for an integer record field: stores a plain ``int``, rejects non-integers with TypeError."""

    def __init__(self, default: int = 0) -> None:
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = "_f_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__.get(self.attr, self.default)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.attr] = _index(value)


# ---------------------------------------------------------------------------------------------------------------


class LiteLayout:
    """Shape (at most 7 dims) and element type of a tensor.

    Args:
        shape: any iterable of ints; None or empty gives an empty layout (ndim 0).
        dtype: a LiteDataType, a dtype name such as ``"float32"``, an ``np.dtype`` or a numpy type; None means
            LITE_FLOAT.

    ``data_type`` reads back as a plain int and ``dtype`` as the numpy type.  Two layouts compare equal only if they
    are the same object, as with the original's ctypes structure.
    """

    ndim = _IntField(0)
    data_type = _IntField(int(LiteDataType.LITE_FLOAT))

    def __init__(self, shape: Iterable[int] | None = None, dtype: Any = None) -> None:
        self._shapes = [0] * MAX_DIM
        dims = _check_dims(shape) if shape is not None else []
        self._shapes[: len(dims)] = dims
        self.ndim = len(dims)
        self.data_type = to_lite_dtype(dtype)

    @property
    def shapes(self) -> list[int]:
        """The first ``ndim`` dims, as a new list."""
        return list(self._shapes[: self.ndim])

    @shapes.setter
    def shapes(self, shape: Iterable[int]) -> None:
        dims = _check_dims(shape)
        self._shapes = dims + [0] * (MAX_DIM - len(dims))
        self.ndim = len(dims)

    @property
    def dtype(self) -> type:
        """The numpy scalar type of ``data_type`` (e.g. ``numpy.float32``)."""
        return lite_to_numpy_type(self.data_type)

    def __copy__(self) -> "LiteLayout":
        new = LiteLayout.__new__(LiteLayout)
        new.__dict__.update(self.__dict__)
        new._shapes = list(self._shapes)
        return new

    def __repr__(self) -> str:
        return repr({"shapes": self.shapes, "ndim": self.ndim, "data_type": self.dtype})


class LiteOptions:
    """Graph/runtime options applied when a network is loaded (all integer flags, see the field list).

    Defaults: ``var_sanity_check_first_run=1``, ``graph_opt_level=2``, ``async_exec_level=1``, everything else 0.
    Note: the original's docstring calls ``comp_node_seq_record_level`` "record_level"; the field is the long name.
    """

    weight_preprocess = _IntField(0)
    fuse_preprocess = _IntField(0)
    fake_next_exec = _IntField(0)
    var_sanity_check_first_run = _IntField(1)
    const_shape = _IntField(0)
    force_dynamic_alloc = _IntField(0)
    force_output_dynamic_alloc = _IntField(0)
    force_output_use_user_specified_memory = _IntField(0)
    no_profiling_on_shape_change = _IntField(0)
    jit_level = _IntField(0)
    comp_node_seq_record_level = _IntField(0)
    graph_opt_level = _IntField(2)
    async_exec_level = _IntField(1)
    # layout transform options
    enable_nchw44 = _IntField(0)
    enable_nchw44_dot = _IntField(0)
    enable_nchw88 = _IntField(0)
    enable_nhwcd4 = _IntField(0)
    enable_nchw4 = _IntField(0)
    enable_nchw32 = _IntField(0)
    enable_nchw64 = _IntField(0)

    _FIELDS = (
        "weight_preprocess",
        "fuse_preprocess",
        "fake_next_exec",
        "var_sanity_check_first_run",
        "const_shape",
        "force_dynamic_alloc",
        "force_output_dynamic_alloc",
        "force_output_use_user_specified_memory",
        "no_profiling_on_shape_change",
        "jit_level",
        "comp_node_seq_record_level",
        "graph_opt_level",
        "async_exec_level",
        "enable_nchw44",
        "enable_nchw44_dot",
        "enable_nchw88",
        "enable_nhwcd4",
        "enable_nchw4",
        "enable_nchw32",
        "enable_nchw64",
    )
    _BOOL_FIELDS = _FIELDS[:9]

    def __init__(self) -> None:
        for name in self._FIELDS:
            setattr(self, name, getattr(type(self), name).default)

    def __repr__(self) -> str:
        data = {
            name: bool(getattr(self, name)) if name in self._BOOL_FIELDS else getattr(self, name)
            for name in self._FIELDS[:13]
        }
        return repr(data)


def _to_bytes_or_none(value: Any, what: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{what}: bytes or str expected instead of {type(value).__name__} instance")


def _name_bytes(name: str | bytes) -> bytes:
    """A name given as str or bytes, stored as UTF-8 bytes like the original's C strings."""
    if isinstance(name, str):
        return name.encode("utf-8")
    assert isinstance(name, bytes), "name should be str or bytes type."
    return name


class LiteConfig:
    """How a network is loaded: device, backend, model decryption/compression, options.

    Args:
        device_type: the device the network runs on.
        option: a LiteOptions to copy in (default: a fresh LiteOptions).
    """

    has_compression = _IntField(0)
    device_id = _IntField(0)
    device_type = _IntField(int(LiteDeviceType.LITE_CPU))
    backend = _IntField(int(LiteBackend.LITE_DEFAULT))
    auto_optimize_inference = _IntField(0)

    def __init__(self, device_type: int = LiteDeviceType.LITE_CPU, option: LiteOptions | None = None) -> None:
        self.device_type = device_type
        self.options = option if option else LiteOptions()
        self._bare_model_cryption_name = b""
        self.use_loader_dynamic_param = 0
        self.has_compression = 0
        self.device_id = 0
        self.backend = LiteBackend.LITE_DEFAULT
        self.auto_optimize_inference = 0
        self.discrete_input_name = b""

    @property
    def options(self) -> LiteOptions:
        """The LiteOptions of this config; assigning one stores a copy."""
        return self._options

    @options.setter
    def options(self, value: LiteOptions) -> None:
        if not isinstance(value, LiteOptions):
            raise TypeError(f"expected LiteOptions instance, got {type(value).__name__}")
        self._options = copy.copy(value)

    @property
    def bare_model_cryption_name(self) -> str:
        """Decryption method name for an encrypted bare model ("" for none); set with str or bytes."""
        return self._bare_model_cryption_name.decode("utf-8")

    @bare_model_cryption_name.setter
    def bare_model_cryption_name(self, name: str | bytes) -> None:
        self._bare_model_cryption_name = _name_bytes(name)

    @property
    def discrete_input_name(self) -> bytes | None:
        """Name of the input fed as several discrete tensors, as bytes (b"" for none)."""
        return self._discrete_input_name

    @discrete_input_name.setter
    def discrete_input_name(self, name: bytes | str | None) -> None:
        self._discrete_input_name = _to_bytes_or_none(name, "discrete_input_name")

    def __repr__(self) -> str:
        data = {
            "has_compression": bool(self.has_compression),
            "device_id": self.device_id,
            "device_type": _enum_or_int(LiteDeviceType, self.device_type),
            "backend": _enum_or_int(LiteBackend, self.backend),
            "bare_model_cryption_name": self.bare_model_cryption_name,
            "options": self.options,
            "auto_optimize_inference": self.auto_optimize_inference,
            "discrete_input_name": self.discrete_input_name,
        }
        return repr(data)


def _enum_or_int(enum: type[IntEnum], value: int) -> Any:
    try:
        return enum(value)
    except ValueError:
        return value


class LiteExtraConfig:
    """Extra load-time configuration; ``disable_configure_by_model_info`` ignores configs packed in the model."""

    disable_configure_by_model_info = _IntField(0)

    def __init__(self, disable_model_config: bool = False) -> None:
        self.disable_configure_by_model_info = disable_model_config

    def __repr__(self) -> str:
        return repr({"disable_configure_by_model_info": bool(self.disable_configure_by_model_info)})


class LiteIO:
    """Configuration of one network input or output.

    Args:
        name: tensor name in the model (str or bytes).
        is_host: True when the data comes from / goes to host memory, False for device memory.
        io_type: LITE_IO_VALUE, or LITE_IO_SHAPE when only the shape matters.
        layout: for an input, the layout to use unless another one is set before forward; the layout is copied.

    ``hash(io) == hash(io.name)``; ``==`` is identity.
    """

    is_host = _IntField(1)
    io_type = _IntField(int(LiteIOType.LITE_IO_VALUE))

    def __init__(
        self,
        name: str | bytes,
        is_host: bool = True,
        io_type: int = LiteIOType.LITE_IO_VALUE,
        layout: LiteLayout | None = None,
    ) -> None:
        self.name = name
        self.config_layout = layout if layout else LiteLayout()
        self.is_host = is_host
        self.io_type = io_type

    @property
    def name(self) -> str:
        """The tensor name (str); set with str or bytes."""
        return self._name.decode("utf-8")

    @name.setter
    def name(self, name: str | bytes) -> None:
        self._name = _name_bytes(name)

    @property
    def config_layout(self) -> LiteLayout:
        """The configured layout (empty layout when none); assigning a LiteLayout stores a copy."""
        return self._config_layout

    @config_layout.setter
    def config_layout(self, layout: LiteLayout) -> None:
        if not isinstance(layout, LiteLayout):
            raise TypeError(f"expected LiteLayout instance, got {type(layout).__name__}")
        self._config_layout = copy.copy(layout)

    def __repr__(self) -> str:
        data = {
            "name": self.name,
            "is_host": bool(self.is_host),
            "io_type": _enum_or_int(LiteIOType, self.io_type),
            "config_layout": self.config_layout,
        }
        return repr(data)

    def __hash__(self) -> int:
        return hash(self.name)


def _as_lite_io(item: Any) -> LiteIO:
    if isinstance(item, (list, tuple)):
        return LiteIO(*item)
    assert isinstance(
        item, LiteIO
    ), "the param to construct LiteNetworkIO must be list of the LiteIO member or the LiteIO."
    return item


class LiteNetworkIO:
    """The input and output configuration of a network.

    Args:
        inputs, outputs: iterables whose items are LiteIO objects or lists/tuples of LiteIO arguments, e.g.
            ``["data", False]``.
    """

    def __init__(self, inputs: Iterable[Any] | None = None, outputs: Iterable[Any] | None = None) -> None:
        self.inputs: list[LiteIO] = [_as_lite_io(i) for i in inputs] if inputs else []
        self.outputs: list[LiteIO] = [_as_lite_io(o) for o in outputs] if outputs else []

    def add_input(
        self,
        obj: LiteIO | str | bytes,
        is_host: bool = True,
        io_type: int = LiteIOType.LITE_IO_VALUE,
        layout: LiteLayout | None = None,
    ) -> None:
        """Add an input: a LiteIO, or a name plus the other LiteIO arguments."""
        self.inputs.append(obj if isinstance(obj, LiteIO) else LiteIO(obj, is_host, io_type, layout))

    def add_output(
        self,
        obj: LiteIO | str | bytes,
        is_host: bool = True,
        io_type: int = LiteIOType.LITE_IO_VALUE,
        layout: LiteLayout | None = None,
    ) -> None:
        """Add an output: a LiteIO, or a name plus the other LiteIO arguments."""
        self.outputs.append(obj if isinstance(obj, LiteIO) else LiteIO(obj, is_host, io_type, layout))

    def __repr__(self) -> str:
        return repr({"inputs": list(self.inputs), "outputs": list(self.outputs)})
