"""Packed Lite models (``.lite``): the ``packed_model`` container of MegEngine Lite.

Layout: the 12 ASCII bytes ``packed_model``, then a FlatBuffer whose root is ``PackModel``
(schema ``lite/src/parse_model/pack_model.fbs`` of the original)::

    table ModelHeader { name:string; info_decryption_method:string; info_parse_method:string;
                        model_decryption_method:string; info_cache_parse_method:string; is_fast_run_cache:bool; }
    table ModelInfo   { data:[ubyte]; algo_policy:[ubyte]; binary_cache:[ubyte]; }
    table ModelData   { data:[ubyte]; }
    table Model       { header:ModelHeader; info:ModelInfo; data:ModelData; }
    table PackModel   { models:[Model]; }

Exactly one model is supported ("Now only support one model").  The model bytes and the info bytes are each
encrypted with a named method (``"NONE"`` = plain, see :mod:`megenginelite.crypto`).  The info is parsed by the
method named in the header; the one built in is ``"LITE_default"``, a JSON document (see :func:`parse_default_info`
and :class:`ModelInfo` for its keys).  ``algo_policy`` is a fast-run algorithm cache (MegEngine's persistent
cache format), used when ``info_cache_parse_method`` is ``"LITE_parse_cache"``.

:func:`unpack` does what the original's ``ModelParser`` does at load, in the same order and with the same errors;
The writer (the original's ``ModelPacker`` / ``pack_model_and_info.py`` layout), used only by tests and fixture
tools, is ``tools/lite_pack.py``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from . import crypto
from .errors import LiteError, ModelFormatError
from .format import PACKED_MAGIC
from .format.flatbuf import Buffer, Table
from .struct import LiteBackend, LiteDataType, LiteDeviceType, LiteIOType

__all__ = ["MAGIC", "is_packed", "unpack", "PackedModel", "ModelInfo", "IOInfo", "parse_default_info",
           "LITE_VERSION", "OPTION_KEYS", "register_parse_info_func"]

logger = logging.getLogger("megenginelite")

MAGIC = PACKED_MAGIC
#: the Lite version packed infos are checked against (a newer "version" only logs a warning)
LITE_VERSION = (1, 13, 0)

# ---------------------------------------------------------------------------------------------------- info JSON


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _type_error(expected: str, v: Any, key: str) -> LiteError:
    # nlohmann::json's wording, plus the key for the reader
    return LiteError(f"[json.exception.type_error.302] type must be {expected}, but is {_json_type(v)} "
                     f"(model info key {key!r})")


def _j_bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise _type_error("boolean", v, key)
    return v


def _j_int(v: Any, key: str) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return int(v)          # C++ conversion truncates toward zero
    raise _type_error("number", v, key)


def _j_str(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise _type_error("string", v, key)
    return v


def _j_get(obj: Any, key: str) -> Any:
    """``obj[key]`` with nlohmann's semantics for what the original reads: missing -> null."""
    if isinstance(obj, dict):
        return obj.get(key)
    if obj is None:
        return None
    raise LiteError(f"[json.exception.type_error.305] cannot use operator[] with a string argument with "
                    f"{_json_type(obj)} (model info key {key!r})")


def _contains(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and key in obj


#: LiteOptions fields a LITE_default info may set, with their C++ types ("bool" or the unsigned width in bits)
OPTION_KEYS: dict[str, str | int] = {
    "weight_preprocess": "bool",
    "fuse_preprocess": "bool",
    "fake_next_exec": "bool",
    "var_sanity_check_first_run": "bool",
    "const_shape": "bool",
    "force_dynamic_alloc": "bool",
    "force_output_dynamic_alloc": "bool",
    "no_profiling_on_shape_change": "bool",
    "jit_level": 8,
    "comp_node_seq_record_level": 8,
    "graph_opt_level": 8,
    "async_exec_level": 16,
}

_DEVICE_TYPES = {
    "CPU": LiteDeviceType.LITE_CPU,
    "CUDA": LiteDeviceType.LITE_CUDA,
    "ATLAS": LiteDeviceType.LITE_ATLAS,
    "CAMBRICON": LiteDeviceType.LITE_CAMBRICON,
    "NPU": LiteDeviceType.LITE_NPU,
}
_IO_TYPES = {"value": LiteIOType.LITE_IO_VALUE, "shape": LiteIOType.LITE_IO_SHAPE}
_DATA_TYPES = {
    "float32": LiteDataType.LITE_FLOAT,
    "float16": LiteDataType.LITE_HALF,
    "int32": LiteDataType.LITE_INT,
    "int16": LiteDataType.LITE_INT16,
    "int8": LiteDataType.LITE_INT8,
    "uint8": LiteDataType.LITE_UINT8,
}
_SHAPE_KEYS = ("dim0", "dim1", "dim2", "dim3")


@dataclass
class IOInfo:
    """One entry of ``IO.inputs`` / ``IO.outputs``; None means "not given, keep what the IO config has"."""

    name: str
    is_host: bool | None = None
    io_type: LiteIOType | None = None
    dtype: LiteDataType | None = None
    #: ``dim0``.. ``dim3`` read in order while present (zeros included); None when ``shape`` is absent
    shape: list[int] | None = None

    def apply_to(self, io: Any) -> None:
        """Set the given fields on a LiteIO (the original's ``Config_IO``)."""
        if self.is_host is not None:
            io.is_host = self.is_host
        if self.io_type is not None:
            io.io_type = int(self.io_type)
        if self.dtype is not None:
            io.config_layout.data_type = int(self.dtype)
        if self.shape is not None:
            io.config_layout.shapes = list(self.shape)


@dataclass
class ModelInfo:
    """The result of the ``LITE_default`` info parser.

    Keys of the JSON (all optional except ``valid``, ``name`` and ``version`` when valid):

    * ``valid`` (bool): false -> nothing else is read or applied.
    * ``name`` (str): must equal the header's model name, else "infomation of model name is not match, ...".
    * ``version`` ("major.minor.patch"): newer than Lite 1.13.0 only logs "Lite load the future version model".
    * ``has_compression`` (bool) -> ``LiteConfig.has_compression``.
    * ``backend``: ``"MGE"`` -> ``LiteConfig.backend = LITE_DEFAULT`` (other values ignored).
    * ``device``: ``type`` (``CPU``/``CUDA``/``ATLAS``/``CAMBRICON``/``NPU``, required when ``device`` is
      present) -> ``LiteConfig.device_type``; ``device_id`` (int), ``number_threads`` (int, applied when > 1),
      ``enable_inplace_model`` (bool, applied when true), ``use_tensorrt`` (bool, applied when true) are
      "separate" settings applied to the network at load, like ``network.device_id = ...``,
      ``threads_number``, ``enable_cpu_inplace_mode()``, ``use_tensorrt()``.
    * ``options``: the :data:`OPTION_KEYS` fields of ``LiteOptions`` (other keys, e.g. ``record_level`` from
      the original README, are ignored).
    * ``IO``: ``inputs`` / ``outputs``: lists of ``{name, is_host, io_type: "value"|"shape", dtype:
      "float32"|"float16"|"int32"|"int16"|"int8"|"uint8", shape: {dim0..dim3}}``; merged into the network IO
      config by name (every entry with that name), or appended as a new IO.
    * ``extra_info`` (any JSON): kept as text (``Network::get_model_extra_info``, compact, sorted keys).
    """

    valid: bool
    name: str | None = None
    version: str | None = None
    has_compression: bool | None = None
    backend: LiteBackend | None = None
    device_type: LiteDeviceType | None = None
    device_id: int | None = None
    number_threads: int | None = None
    enable_inplace_model: bool | None = None
    use_tensorrt: bool | None = None
    options: dict[str, int] = field(default_factory=dict)
    inputs: list[IOInfo] = field(default_factory=list)
    outputs: list[IOInfo] = field(default_factory=list)
    extra_info: str | None = None
    future_version: bool = False

    def separate_config(self) -> dict[str, Any]:
        """The original's ``separate_config_map``: settings applied to the network at load.

        Note the original applies these at load even when ``LiteExtraConfig.disable_configure_by_model_info``
        is set.  ``number_threads`` takes effect only when > 1, ``enable_inplace_model`` / ``use_tensorrt``
        only when true.
        """
        out: dict[str, Any] = {}
        for key in ("device_id", "number_threads", "enable_inplace_model", "use_tensorrt"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def apply(self, config: Any, network_io: Any) -> None:
        """Apply the config and IO parts to a LiteConfig and a LiteNetworkIO, in place.

        (The original applies them to the network's own copies, not to the user's objects: pass copies.)
        Nothing is applied when ``valid`` is false.
        """
        if not self.valid:
            return
        if self.has_compression is not None:
            config.has_compression = int(self.has_compression)
        if self.backend is not None:
            config.backend = int(self.backend)
        if self.device_type is not None:
            config.device_type = int(self.device_type)
        for key, value in self.options.items():
            setattr(config.options, key, value)
        from .struct import LiteIO

        for infos, ios in ((self.inputs, network_io.inputs), (self.outputs, network_io.outputs)):
            for info in infos:
                found = False
                for io in ios:
                    if io.name == info.name:
                        found = True
                        info.apply_to(io)
                if not found:
                    io = LiteIO(info.name)
                    info.apply_to(io)
                    ios.append(io)


def _parse_version(text: str) -> tuple[int, int, int]:
    # "major.minor.patch", as the original splits it (std::stoi on each part)
    parts = text.split(".")
    try:
        if len(parts) < 3:
            raise ValueError
        return tuple(int(_leading_int(p)) for p in parts[:3])  # type: ignore[return-value]
    except ValueError:
        raise LiteError(f"model info version {text!r} is not of the form major.minor.patch") from None


def _leading_int(part: str) -> int:
    s = part.lstrip()
    n = 0
    if s[:1] in ("+", "-"):
        n = 1
    while n < len(s) and s[n].isdigit():
        n += 1
    return int(s[:n])


def _parse_io(entry: Any, where: str) -> IOInfo:
    name = _j_str(_j_get(entry, "name"), f"{where}.name")
    info = IOInfo(name)
    if _contains(entry, "is_host"):
        info.is_host = _j_bool(entry["is_host"], f"{where}.is_host")
    if _contains(entry, "io_type"):
        value = _j_str(entry["io_type"], f"{where}.io_type")
        if value not in _IO_TYPES:
            raise LiteError(f"LITE not support IO type of {value}.")
        info.io_type = _IO_TYPES[value]
    if _contains(entry, "dtype"):
        value = _j_str(entry["dtype"], f"{where}.dtype")
        if value not in _DATA_TYPES:
            raise LiteError(f"LITE not support data type of {value}.")
        info.dtype = _DATA_TYPES[value]
    if _contains(entry, "shape"):
        shape_json = entry["shape"]
        dims = []
        for key in _SHAPE_KEYS:
            if not _contains(shape_json, key):
                break
            dim = _j_int(shape_json[key], f"{where}.shape.{key}")
            if dim < 0:
                raise LiteError(f"model info {where}.shape.{key} is negative ({dim})")
            dims.append(dim)
        info.shape = dims
    return info


def parse_default_info(info: bytes | str, model_name: str) -> ModelInfo:
    """The ``LITE_default`` info parser: JSON text -> :class:`ModelInfo` (errors as LiteError)."""
    if isinstance(info, str):
        info = info.encode("utf-8")
    raw = bytes(info)
    # the original's JSON parser (nlohmann::json) takes a NUL byte as the end of the input: RC4-decrypted infos
    # carry their zero padding and 8 garbage bytes after the text
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise LiteError(f"[json.exception.parse_error.101] parse error: model info is not valid UTF-8 "
                        f"({exc})") from None
    except json.JSONDecodeError as exc:
        raise LiteError(f"[json.exception.parse_error.101] parse error at line {exc.lineno}, column {exc.colno}: "
                        f"{exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise LiteError(f"[json.exception.parse_error.101] parse error: {exc}") from None

    if not _j_bool(_j_get(doc, "valid"), "valid"):
        return ModelInfo(valid=False)
    result = ModelInfo(valid=True)
    name_json = _j_get(doc, "name")
    if name_json != model_name:
        raise LiteError(f"infomation of model name is not match, packed model is {model_name}, but json info get "
                        f"{_j_str(name_json, 'name')}.")
    result.name = name_json
    result.version = _j_str(_j_get(doc, "version"), "version")
    if _parse_version(result.version) > LITE_VERSION:
        result.future_version = True
        logger.warning("Lite load the future version model !!!!!!!!!!!!!")

    if _contains(doc, "has_compression"):
        result.has_compression = _j_bool(doc["has_compression"], "has_compression")
    if _contains(doc, "backend") and doc["backend"] == "MGE":
        result.backend = LiteBackend.LITE_DEFAULT
    if _contains(doc, "device"):
        device = doc["device"]
        dtype = _j_str(_j_get(device, "type"), "device.type")
        if dtype not in _DEVICE_TYPES:
            raise LiteError(f"LITE not support device type of {dtype}.")
        result.device_type = _DEVICE_TYPES[dtype]
        if _contains(device, "device_id"):
            result.device_id = _wrap(_j_int(device["device_id"], "device.device_id"), 32, signed=True)
        if _contains(device, "number_threads"):
            result.number_threads = _wrap(_j_int(device["number_threads"], "device.number_threads"), 32)
        if _contains(device, "enable_inplace_model"):
            result.enable_inplace_model = _j_bool(device["enable_inplace_model"], "device.enable_inplace_model")
        if _contains(device, "use_tensorrt"):
            result.use_tensorrt = _j_bool(device["use_tensorrt"], "device.use_tensorrt")
    if _contains(doc, "options"):
        options = doc["options"]
        for key, kind in OPTION_KEYS.items():
            if _contains(options, key):
                if kind == "bool":
                    result.options[key] = int(_j_bool(options[key], f"options.{key}"))
                else:
                    result.options[key] = _wrap(_j_int(options[key], f"options.{key}"), kind)  # type: ignore[arg-type]
    if _contains(doc, "IO"):
        ios = doc["IO"]
        for part, target in (("inputs", result.inputs), ("outputs", result.outputs)):
            if _contains(ios, part):
                entries = ios[part]
                if not isinstance(entries, list):
                    entries = [entries] if entries is not None else []
                for i, entry in enumerate(entries):
                    target.append(_parse_io(entry, f"IO.{part}[{i}]"))
    if _contains(doc, "extra_info"):
        result.extra_info = json.dumps(doc["extra_info"], separators=(",", ":"), sort_keys=True,
                                       ensure_ascii=False)
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _wrap(value: int, bits: int, signed: bool = False) -> int:
    """C++ integral conversion: modulo 2**bits."""
    value &= (1 << bits) - 1
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


_ParseInfoFunc = Callable[[bytes, str], ModelInfo]
_PARSE_INFO_METHODS: dict[str, _ParseInfoFunc] = {"LITE_default": parse_default_info}


def register_parse_info_func(name: str, func: _ParseInfoFunc) -> None:
    """Register an info parser ``func(info_bytes, model_name) -> ModelInfo`` (the C API's
    ``LITE_register_parse_info_func``; not exposed by the original's Python package)."""
    if name in _PARSE_INFO_METHODS:
        raise LiteError(f"The parse info method {name} is already registered.")
    _PARSE_INFO_METHODS[name] = func


# ---------------------------------------------------------------------------------------------------- unpack


@dataclass
class PackedModel:
    """A parsed packed model: the header, the decrypted model and info, the parsed info and the caches."""

    name: str
    model_decryption_method: str
    info_decryption_method: str
    info_parse_method: str
    #: None when the header has no such field (files from ``pack_model_and_info.py``)
    info_cache_parse_method: str | None
    is_fast_run_cache: bool
    #: the decrypted inner model (an ordinary ``.mge``, possibly with trailing padding)
    model: bytes
    #: the decrypted info bytes, None when the package has no info data
    info_data: bytes | None = None
    #: the parsed info, None when there is no info data
    info: ModelInfo | None = None
    #: the fast-run algorithm cache (MegEngine persistent-cache blob), when packed
    algo_policy: bytes | None = None
    binary_cache: bytes | None = None

    @property
    def fast_run_cache(self) -> bytes | None:
        """The algorithm cache to install at load (``LITE_parse_cache`` with ``is_fast_run_cache``), if any."""
        if self.algo_policy is not None and self.is_fast_run_cache \
                and self.info_cache_parse_method == "LITE_parse_cache":
            return self.algo_policy
        return None


def is_packed(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` starts with the ``packed_model`` tag."""
    return bytes(data[:len(MAGIC)]) == MAGIC


def _header_string(header: Table, slot: int, what: str) -> str:
    value = header.string(slot)
    if value is None:
        raise ModelFormatError(f"invalid packed model: the model header has no {what}")
    return value


def unpack(data: bytes | bytearray | memoryview, *, configure_valid: bool = True,
           decrypt: Callable[[str, Any], bytes] | None = None, source: str = "packed model") -> PackedModel:
    """Parse a packed model and decrypt its parts, as the original does at load.

    Steps and errors, in the original's order:

    1. header: one model only (LiteError "Now only support one model"); the header strings.
    2. info (when the package has info data): decrypt with ``info_decryption_method``, parse with
       ``info_parse_method`` (unknown: "can't find model info parse function <name>.").  Then, if
       ``configure_valid`` (i.e. not ``LiteExtraConfig.disable_configure_by_model_info``) and an algo cache is
       packed: ``info_cache_parse_method`` must be "LITE_parse_cache" ("model cache parse function of  <name> is
       not defined.") and either ``is_fast_run_cache`` or a binary cache must be set ("opencl binary cache is
       not given").
    3. model: must be present ("packed model parse error!") and non-empty ("The loaded model is of zero
       length."); decrypted with ``model_decryption_method``.

    ``decrypt(name, data)`` defaults to :func:`megenginelite.crypto.decrypt`.  Corrupt FlatBuffers raise
    ModelFormatError.  ``LiteConfig.bare_model_cryption_name`` plays no part for packed models.
    """
    decrypt = crypto.decrypt if decrypt is None else decrypt
    view = memoryview(data)
    if bytes(view[:len(MAGIC)]) != MAGIC:
        raise ModelFormatError(f"{source}: not a packed model (no 'packed_model' tag)")
    buf = Buffer(view, len(MAGIC), len(view), source)
    root = buf.root()
    models = root.table_vector(0, "Model")
    if len(models) != 1:
        raise LiteError("Now only support one model")
    model = models[0]
    header = model.table(0, "ModelHeader")
    if header is None:
        raise ModelFormatError("invalid packed model: the model has no header")
    packed = PackedModel(
        name=_header_string(header, 0, "name"),
        info_decryption_method=_header_string(header, 1, "info_decryption_method"),
        info_parse_method=_header_string(header, 2, "info_parse_method"),
        model_decryption_method=_header_string(header, 3, "model_decryption_method"),
        info_cache_parse_method=header.string(4),
        is_fast_run_cache=bool(header.scalar(5, "bool", False)),
        model=b"",
    )
    info = model.table(1, "ModelInfo")
    if info is not None:
        info_raw = info.bytes_vector(0)
        if info_raw is not None:
            packed.info_data = decrypt(packed.info_decryption_method, info_raw)
            parser = _PARSE_INFO_METHODS.get(packed.info_parse_method)
            if parser is None:
                raise LiteError(f"can't find model info parse function {packed.info_parse_method}.")
            packed.info = parser(packed.info_data, packed.name)
        algo = info.bytes_vector(1)
        binary = info.bytes_vector(2)
        packed.algo_policy = None if algo is None else bytes(algo)
        packed.binary_cache = None if binary is None else bytes(binary)
        if algo is not None and configure_valid:
            method = packed.info_cache_parse_method or ""
            if method != "LITE_parse_cache":
                raise LiteError(f"model cache parse function of  {method} is not defined.")
            if not packed.is_fast_run_cache and binary is None:
                raise LiteError("opencl binary cache is not given")
    data_table = model.table(2, "ModelData")
    model_raw = None if data_table is None else data_table.bytes_vector(0)
    if model_raw is None:
        raise LiteError("packed model parse error!")
    if len(model_raw) == 0:
        raise LiteError("The loaded model is of zero length.")
    packed.model = decrypt(packed.model_decryption_method, model_raw)
    return packed
