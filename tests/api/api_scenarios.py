"""Small scenarios over the public ``megenginelite`` API, run against the real library and ours.

Every scenario is a function ``scenario(lite, fixtures) -> observation``: ``lite`` is the imported ``megenginelite``
module (the real MegEngine Lite 1.13 one, or ours), ``fixtures`` the path of ``tests/fixtures``.  The observation is
made of plain JSON types only:

* returned values converted with :func:`plain` (enums become their int, numpy scalars Python numbers, floats are
  rounded to 6 significant digits, arrays ``{"shape", "dtype", "values"}`` or a summary for big ones, layouts
  ``{"shapes", "ndim", "data_type"}``, types their ``__name__``);
* a failure, caught by :func:`call`, as ``{"raises": class name, "mro": [class names], "is_runtime_error": bool,
  "message_has": key substring or None, "message": the message (truncated)}``.  ``message_has`` is the part of the
  message that matters (chosen here from the documented behaviour); None where the original's message is an
  implementation detail (the repr of a ctypes type, a ctypes conversion error, ...).

``tools/record_api_behaviour.py`` runs each scenario in its own process under the real library and writes
``fixtures/api_behaviour.json``; ``test_api_behaviour.py`` runs them with our package and compares.

Rules for writing scenarios: never record memory that was not written (fresh tensors, outputs before the first
forward, ``fake_next_exec`` runs); register at most one callback per scenario (the original frees the previous
callback's trampoline when another is registered); no float16 tensors through the original's paths that crash.
"""

from __future__ import annotations

import ctypes
import enum
import math
import os
import pathlib
import tempfile
import threading
import warnings
from typing import Any, Callable

import numpy as np

SCENARIOS: dict[str, Callable[[Any, str], Any]] = {}

#: Scenarios that are not run under the original because they crash it (the recording holds
#: ``{"not_run_on_original": reason}``); ours must still pass them (see INTENDED_DIFFERENCES in the test).
ORIGINAL_UNSAFE: dict[str, str] = {
    "module_get_log_level": "LITE_get_log_level is called without its out-pointer argument: RuntimeError "
                            "'The ptr pass to LITE api is null' or a segfault, depending on a stale register",
    "module_get_log_level_after_set": "same as module_get_log_level",
}


def scenario(fn: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    assert fn.__name__ not in SCENARIOS, fn.__name__
    SCENARIOS[fn.__name__] = fn
    return fn


# ============================================================================================ observation helpers


def num(x: Any) -> Any:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.6g}")


def array_obs(a: np.ndarray, full: int = 64) -> dict:
    a = np.asarray(a)
    out: dict[str, Any] = {"shape": [int(d) for d in a.shape], "dtype": str(a.dtype)}
    if a.size <= full:
        flat = a.reshape(-1)
        if a.dtype.kind == "f":
            out["values"] = [num(v) for v in flat]
        else:
            out["values"] = [int(v) for v in flat]
    else:
        f = a.astype(np.float64)
        out["summary"] = {"sum": num(f.sum()), "min": num(f.min()), "max": num(f.max()),
                          "argmax": int(f.reshape(-1).argmax()), "abs_sum": num(np.abs(f).sum())}
    return out


def layout_obs(layout: Any) -> dict:
    return {"shapes": [int(d) for d in layout.shapes], "ndim": int(layout.ndim), "data_type": int(layout.data_type)}


def tensor_obs(t: Any) -> dict:
    """Layout, device type, pinned flag, contiguity and size (device_id is recorded where a scenario asks)."""
    return {"layout": layout_obs(t.layout), "device_type": int(t.device_type), "is_pinned_host": t.is_pinned_host,
            "is_continue": t.is_continue, "nbytes": int(t.nbytes)}


def io_obs(io: Any) -> dict:
    return {"name": io.name, "is_host": int(io.is_host), "io_type": int(io.io_type),
            "config_layout": layout_obs(io.config_layout)}


def plain(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, enum.Enum):
        return int(v.value)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return num(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, bytes):
        return {"bytes": v.decode("latin-1")}
    if isinstance(v, np.ndarray):
        return array_obs(v)
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, type):
        return v.__name__
    name = type(v).__name__
    if name == "LiteLayout":
        return layout_obs(v)
    if name == "LiteTensor":
        return tensor_obs(v)
    if name == "LiteIO":
        return io_obs(v)
    if isinstance(v, ctypes.c_void_p):
        return {"c_void_p_set": v.value is not None}
    return {"object_of_type": name}


CTYPES_LENGTH_KEY = "when input data is ctypes, the length of input data or layout must set"

#: the message of the TypeError that ctypes integer fields (and ``operator.index``) raise for non-integers
INT_KEY = "cannot be interpreted as an integer"


def exc_obs(e: BaseException, key: str | None) -> dict:
    return {
        "raises": type(e).__name__,
        "mro": [c.__name__ for c in type(e).__mro__ if c not in (object, BaseException)],
        "is_runtime_error": isinstance(e, RuntimeError),
        "message_has": key,
        "message": str(e).split("\n\nbacktrace:")[0][:600],  # MegBrain appends a backtrace with addresses
    }


def call(fn: Callable[[], Any], key: str | None = None) -> Any:
    """``plain(fn())``, or the exception observation (with ``key``, the message substring that matters)."""
    try:
        return plain(fn())
    except Exception as e:  # noqa: BLE001 - recording any failure is the point
        return exc_obs(e, key)


def caught_warnings(fn: Callable[[], Any], key: str | None = None) -> dict:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        result = call(fn, key)
    return {"result": result, "warnings": [str(w.message) for w in got]}


def fx(fixtures: str, name: str) -> str:
    return os.path.join(fixtures, name)


def ref(fixtures: str, name: str) -> dict:
    with np.load(fx(fixtures, name + ".npz")) as data:
        return {k: data[k] for k in data.files}


def ptr(t: Any) -> int:
    return int(t.get_ctypes_memory().value or 0)


def filled(lite: Any, shape: list, dtype: str = "float32") -> Any:
    t = lite.LiteTensor(lite.LiteLayout(shape, dtype))
    t.set_data_by_copy(np.arange(int(np.prod(shape))).astype(dtype).reshape(shape))
    return t


def resnet(lite: Any, fixtures: str, config: Any = None, io: Any = None) -> Any:
    net = lite.LiteNetwork(config, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    return net


def resnet_input(fixtures: str, batch: int = 1) -> np.ndarray:
    x = ref(fixtures, "resnet18_small")["input:data"]
    if batch == 1:
        return np.ascontiguousarray(x)
    rows = [x[0] * (1.0 + 0.25 * i) for i in range(batch)]
    return np.ascontiguousarray(np.stack(rows).astype(np.float32))


def run_resnet(net: Any, x: np.ndarray) -> np.ndarray:
    net.get_io_tensor("data").set_data_by_copy(x)
    net.forward()
    net.wait()
    return net.get_io_tensor("logits").to_numpy()


# ============================================================================================ 1. module level

PUBLIC_NAMES = [
    "version", "__version__", "set_log_level", "get_log_level", "MAX_DIM", "lite_dtype_2_numpy", "LiteTensorConcat",
    "get_model_io_info", "decryption_func", "wrap_async_callback", "start_finish_callback", "LiteAsyncCallback",
    "LiteStartCallback", "LiteFinishCallback", "LiteDecryptionFunc", "ctype_to_lite_dtypes", "LiteBackend",
    "LiteDeviceType", "LiteDataType", "LiteTensorPhase", "LiteIOType", "LiteAlgoSelectStrategy", "LiteLogLevel",
    "LiteLayout", "LiteTensor", "LiteOptions", "LiteConfig", "LiteExtraConfig", "LiteIO", "LiteNetworkIO",
    "LiteNetwork", "LiteGlobal", "TensorBatchCollector",
]  # fmt: skip


@scenario
def module_public_names(lite, fixtures):
    return {n: hasattr(lite, n) for n in PUBLIC_NAMES}


@scenario
def module_public_callables(lite, fixtures):
    names = ["set_log_level", "get_log_level", "lite_dtype_2_numpy", "LiteTensorConcat", "get_model_io_info",
             "decryption_func", "wrap_async_callback", "start_finish_callback"]
    return {n: callable(getattr(lite, n, None)) for n in names}


@scenario
def module_version(lite, fixtures):
    return {"version": lite.version, "__version__": lite.__version__, "type": type(lite.version).__name__}


@scenario
def module_max_dim(lite, fixtures):
    return lite.MAX_DIM


@scenario
def module_set_log_level_valid(lite, fixtures):
    out = [call(lambda i=i: lite.set_log_level(i)) for i in range(4)]
    out.append(call(lambda: lite.set_log_level(lite.LiteLogLevel.WARN)))
    out.append(call(lambda: lite.set_log_level(lite.LiteLogLevel.ERROR)))
    return out


@scenario
def module_set_log_level_99(lite, fixtures):
    return call(lambda: lite.set_log_level(99), "unkonw loglevel")


@scenario
def module_set_log_level_negative(lite, fixtures):
    return call(lambda: lite.set_log_level(-1), "unkonw loglevel")


@scenario
def module_set_log_level_str(lite, fixtures):
    return call(lambda: lite.set_log_level("DEBUG"), "argument 1")


@scenario
def module_set_log_level_float(lite, fixtures):
    return call(lambda: lite.set_log_level(1.5), "argument 1")


@scenario
def module_get_log_level(lite, fixtures):
    return call(lambda: lite.get_log_level())


@scenario
def module_get_log_level_after_set(lite, fixtures):
    lite.set_log_level(lite.LiteLogLevel.WARN)
    got = call(lambda: lite.get_log_level())
    lite.set_log_level(lite.LiteLogLevel.ERROR)
    return got


@scenario
def module_lite_dtype_2_numpy(lite, fixtures):
    return {m.name: lite.lite_dtype_2_numpy(m).__name__ for m in lite.LiteDataType}


@scenario
def module_lite_dtype_2_numpy_errors(lite, fixtures):
    key = "input must be LiteDataType when using lite_dtype_2_numpy."
    return {"int": call(lambda: lite.lite_dtype_2_numpy(0), key),
            "str": call(lambda: lite.lite_dtype_2_numpy("float32"), key)}


@scenario
def module_ctype_to_lite_dtypes(lite, fixtures):
    return sorted([k.__name__, int(v)] for k, v in lite.ctype_to_lite_dtypes.items())


@scenario
def module_wrap_async_callback(lite, fixtures):
    wrapped = lite.wrap_async_callback(lambda: 7)
    return {"callable": callable(wrapped), "call": call(lambda: wrapped())}


@scenario
def module_start_finish_callback(lite, fixtures):
    wrapped = lite.start_finish_callback(lambda ios: 0)
    return {"callable": callable(wrapped)}


@scenario
def module_decryption_func(lite, fixtures):
    def xor(in_arr, key_arr, out_arr):
        return len(in_arr)

    wrapped = lite.decryption_func(xor)
    return {"callable": callable(wrapped)}


# ============================================================================================ 2. enums

ENUMS = ["LiteBackend", "LiteDeviceType", "LiteDataType", "LiteTensorPhase", "LiteIOType", "LiteAlgoSelectStrategy",
         "LiteLogLevel"]


def _enum_scenario(enum_name: str) -> None:
    def fn(lite, fixtures):
        cls = getattr(lite, enum_name)
        return {"members": {m.name: int(m) for m in cls}, "is_intenum": issubclass(cls, enum.IntEnum)}

    fn.__name__ = "enum_" + enum_name
    scenario(fn)


for _name in ENUMS:
    _enum_scenario(_name)


@scenario
def enum_algo_strategy_flags_combine(lite, fixtures):
    s = lite.LiteAlgoSelectStrategy
    v = s.LITE_ALGO_PROFILE | s.LITE_ALGO_OPTIMIZED | s.LITE_ALGO_REPRODUCIBLE
    return {"value": int(v), "type": type(v).__name__}


# ============================================================================================ 3. LiteLayout


@scenario
def layout_default(lite, fixtures):
    lay = lite.LiteLayout()
    return {"layout": layout_obs(lay), "dtype": lay.dtype.__name__, "data_type_type": type(lay.data_type).__name__}


@scenario
def layout_shape_iterables(lite, fixtures):
    L = lite.LiteLayout
    return {
        "list": call(lambda: L([1, 3, 224, 224])),
        "tuple": call(lambda: L((2, 3))),
        "range": call(lambda: L(range(1, 4))),
        "generator": call(lambda: L(d for d in [4, 5])),
        "empty_list": call(lambda: L([])),
        "empty_tuple": call(lambda: L(())),
        "none": call(lambda: L(None)),
    }


@scenario
def layout_shape_ndarray(lite, fixtures):
    return call(lambda: lite.LiteLayout(np.array([2, 3])))


@scenario
def layout_shape_numpy_ints(lite, fixtures):
    return call(lambda: lite.LiteLayout([np.int64(2), np.int32(3)]))


@scenario
def layout_shape_float_dim(lite, fixtures):
    return call(lambda: lite.LiteLayout([1.5, 2]), INT_KEY)


@scenario
def layout_max_dim(lite, fixtures):
    return {"seven": call(lambda: lite.LiteLayout([1] * 7)),
            "eight": call(lambda: lite.LiteLayout([1] * 8), "Layout max dim is 7.")}


@scenario
def layout_negative_dim(lite, fixtures):
    return call(lambda: lite.LiteLayout([-1, 2]).shapes)


@scenario
def layout_dtypes_accepted(lite, fixtures):
    L, D = lite.LiteLayout, lite.LiteDataType
    cases = {
        "None": None, "zero": 0, "LITE_INT": D.LITE_INT, "LITE_HALF": D.LITE_HALF, "LITE_UINT16": D.LITE_UINT16,
        "str_int32": "int32", "str_float32": "float32", "str_uint8": "uint8", "str_int8": "int8",
        "str_int16": "int16", "str_uint16": "uint16", "str_float16": "float16",
        "np_dtype_int32": np.dtype("int32"), "np_dtype_float32": np.dtype("float32"),
        "np_dtype_uint8": np.dtype("uint8"), "np_dtype_int8": np.dtype("int8"), "np_dtype_int16": np.dtype("int16"),
        "np_dtype_uint16": np.dtype("uint16"), "np_dtype_uint32": np.dtype("uint32"),
        "np_float32": np.float32, "np_float16": np.float16, "np_int32": np.int32, "np_uint8": np.uint8,
        "np_int8": np.int8, "np_int16": np.int16, "np_uint16": np.uint16,
    }  # fmt: skip
    return {k: call(lambda d=d: L([2], d).data_type) for k, d in cases.items()}


def _dtype_error_scenario(label: str, make: Callable[[], Any], key: str | None) -> None:
    def fn(lite, fixtures):
        d = make()
        return call(lambda: lite.LiteLayout([2], d).data_type, key)

    fn.__name__ = "layout_dtype_" + label
    scenario(fn)


for _label, _make, _key in [
    ("str_float64", lambda: "float64", "float64"),
    ("str_int64", lambda: "int64", "int64"),
    ("str_bool", lambda: "bool", "bool"),
    ("str_uint32", lambda: "uint32", "uint32"),
    ("np_float64", lambda: np.float64, "float64"),
    ("np_int64", lambda: np.int64, "int64"),
    ("np_dtype_float64", lambda: np.dtype("float64"), None),
    ("np_dtype_int64", lambda: np.dtype("int64"), None),
    ("np_dtype_bool", lambda: np.dtype("bool"), None),
    ("np_dtype_float16", lambda: np.dtype("float16"), None),
    ("np_dtype_bigendian_f4", lambda: np.dtype(">f4"), None),
    ("int_2", lambda: 2, "unkonw data type"),
    ("true", lambda: True, "unkonw data type"),
    ("object", lambda: object(), "unkonw data type"),
    ("unknown_name", lambda: "notatype", "notatype"),
]:
    _dtype_error_scenario(_label, _make, _key)


@scenario
def layout_attributes(lite, fixtures):
    lay = lite.LiteLayout([1, 3, 224, 224], "uint8")
    return {"layout": layout_obs(lay), "data_type_type": type(lay.data_type).__name__, "dtype": lay.dtype.__name__,
            "shapes_type": type(lay.shapes).__name__, "ndim_type": type(lay.ndim).__name__}


@scenario
def layout_shapes_setter(lite, fixtures):
    lay = lite.LiteLayout([1, 2], "int8")
    out = {}
    lay.shapes = (5, 6, 7)
    out["tuple"] = layout_obs(lay)
    lay.shapes = []
    out["empty"] = layout_obs(lay)
    lay.shapes = range(3)
    out["range"] = layout_obs(lay)
    out["eight"] = call(lambda: setattr(lay, "shapes", [1] * 8), "Layout max dim is 7.")
    out["after_error"] = layout_obs(lay)
    return out


@scenario
def layout_field_assignment(lite, fixtures):
    lay = lite.LiteLayout([2, 3, 4])
    out = {}
    lay.data_type = lite.LiteDataType.LITE_INT8
    out["data_type_enum"] = [lay.data_type, type(lay.data_type).__name__, lay.dtype.__name__]
    lay.ndim = 2
    out["ndim_2"] = layout_obs(lay)
    out["data_type_float"] = call(lambda: setattr(lay, "data_type", 2.5), INT_KEY)
    lay.data_type = 9
    out["bad_data_type_dtype"] = call(lambda: lay.dtype, "9 is not a valid LiteDataType")
    return out


@scenario
def layout_repr(lite, fixtures):
    L = lite.LiteLayout
    return [repr(L([1, 3, 224, 224])), repr(L()), repr(L([2], "int8")), repr(L([4], lite.LiteDataType.LITE_UINT16))]


@scenario
def layout_equality_is_identity(lite, fixtures):
    a, b = lite.LiteLayout([1, 2]), lite.LiteLayout([1, 2])
    return {"a==b": a == b, "a==a": a == a, "a!=b": a != b}


# ============================================================================================ 4. LiteTensor


@scenario
def tensor_default(lite, fixtures):
    t = lite.LiteTensor()
    return {"tensor": tensor_obs(t), "device_id": t.device_id, "device_type_type": type(t.device_type).__name__}


@scenario
def tensor_from_shapes_and_dtype(lite, fixtures):
    t1 = lite.LiteTensor(shapes=[2, 3], dtype="int32")
    t2 = lite.LiteTensor(shapes=(2, 3))
    t3 = lite.LiteTensor(shapes=[1, 3, 224], dtype=np.int8)
    return [tensor_obs(t1), tensor_obs(t2), tensor_obs(t3)]


@scenario
def tensor_dtype_without_shapes(lite, fixtures):
    t = lite.LiteTensor(dtype="int32")
    return tensor_obs(t)


@scenario
def tensor_layout_wins_over_shapes(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([4], "int8"), shapes=[2, 3], dtype="int32")
    return tensor_obs(t)


@scenario
def tensor_layout_must_be_lite_layout(lite, fixtures):
    return call(lambda: lite.LiteTensor([2, 3]), "expected LiteLayout instance, got list")


@scenario
def tensor_layout_object_aliased(lite, fixtures):
    lay = lite.LiteLayout([2, 3], "int16")
    t = lite.LiteTensor(lay)
    out = {"is": t.layout is lay}
    t.layout = [4, 5]
    out["after_list_set"] = layout_obs(lay)
    t.reshape([20])
    out["after_reshape"] = layout_obs(lay)
    return out


@scenario
def tensor_empty_layout_with_dtype(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout(None, "int8"))
    return {"tensor": tensor_obs(t), "to_numpy": array_obs(t.to_numpy())}


@scenario
def tensor_device_default(lite, fixtures):
    t = lite.LiteTensor(shapes=[2], device_type=lite.LiteDeviceType.LITE_DEVICE_DEFAULT)
    fresh = {"tensor": tensor_obs(t), "device_id": t.device_id}
    t.fill_zero()
    return {"fresh": fresh, "values": array_obs(t.to_numpy()), "after_fill_zero": tensor_obs(t)}


@scenario
def tensor_device_default_after_copy(lite, fixtures):
    t = lite.LiteTensor(shapes=[2], device_type=lite.LiteDeviceType.LITE_DEVICE_DEFAULT)
    t.set_data_by_copy([1.0, 2.0])
    return {"tensor": tensor_obs(t), "device_id": t.device_id, "values": array_obs(t.to_numpy())}


@scenario
def tensor_device_default_set_data_by_share(lite, fixtures):
    t = lite.LiteTensor(shapes=[2], device_type=lite.LiteDeviceType.LITE_DEVICE_DEFAULT)
    x = np.array([1.0, 2.0], np.float32)
    key = "set_data_by_share can only apply in cpu tensor or pinned tensor."
    return {"share": call(lambda: t.set_data_by_share(x), key),
            "tensor": tensor_obs(t)}


@scenario
def tensor_cpu_device_id_3(lite, fixtures):
    t = lite.LiteTensor(shapes=[2], device_id=3)
    fresh = {"tensor": tensor_obs(t), "device_id": t.device_id}
    t.fill_zero()
    after_fill = t.device_id
    x = np.array([1.0, 2.0], np.float32)
    t.set_data_by_share(x)
    return {"fresh": fresh, "after_fill_zero": after_fill, "after_share": t.device_id,
            "values": array_obs(t.to_numpy())}


@scenario
def tensor_device_id_after_copy_and_share(lite, fixtures):
    src = lite.LiteTensor(shapes=[2], device_id=3)
    src.fill_zero()
    a = lite.LiteTensor(shapes=[2], device_id=3)
    a.set_data_by_copy([1.0, 2.0])
    b = lite.LiteTensor(shapes=[2])
    b.copy_from(src)
    c = lite.LiteTensor(shapes=[2])
    c.share_memory_with(src)
    return {"set_data_by_copy": a.device_id, "copy_from": b.device_id, "share_memory_with": c.device_id,
            "src": src.device_id}


@scenario
def tensor_cuda_without_gpu(lite, fixtures):
    return call(lambda: lite.LiteTensor(shapes=[2], device_type=lite.LiteDeviceType.LITE_CUDA),
                "out of valid range")


@scenario
def tensor_pinned_cpu(lite, fixtures):
    def make():
        t = lite.LiteTensor(shapes=[2], is_pinned_host=True)
        fresh = tensor_obs(t)
        t.fill_zero()
        return {"fresh": fresh, "device_id": t.device_id, "values": array_obs(t.to_numpy())}

    return call(make, "out of valid range")


@scenario
def tensor_pinned_cpu_after_copy(lite, fixtures):
    t = lite.LiteTensor(shapes=[2], is_pinned_host=True)
    t.set_data_by_copy([1.0, 2.0])
    return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_atlas(lite, fixtures):
    return call(lambda: tensor_obs(lite.LiteTensor(shapes=[2], device_type=lite.LiteDeviceType.LITE_ATLAS)))


@scenario
def tensor_half(lite, fixtures):
    def make():
        t = lite.LiteTensor(shapes=[3], dtype=lite.LiteDataType.LITE_HALF)
        t.set_data_by_copy(np.array([1.5, -2.0, 0.25], np.float16))
        return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}

    return call(make)


@scenario
def tensor_uint16(lite, fixtures):
    def make():
        t = lite.LiteTensor(shapes=[3], dtype="uint16")
        t.set_data_by_copy([1, 2, 65535])
        return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}

    return call(make, "unsupport dtype in lite enum id is 6")


@scenario
def tensor_layout_setter(lite, fixtures):
    t = filled(lite, [2, 3])
    out = {}
    t.layout = [3, 2]
    out["list"] = tensor_obs(t)
    out["list_values"] = array_obs(t.to_numpy())
    new = lite.LiteLayout([6], "int32")
    t.layout = new
    out["layout_obj"] = tensor_obs(t)
    out["is_new"] = t.layout is new
    return out


@scenario
def tensor_layout_setter_tuple(lite, fixtures):
    t = filled(lite, [2, 3])
    t.layout = (3, 2)
    return tensor_obs(t)


@scenario
def tensor_layout_setter_memory(lite, fixtures):
    t = filled(lite, [2, 3])
    p0 = ptr(t)
    t.layout = [3, 2]
    same = {"ptr_same": ptr(t) == p0, "values": array_obs(t.to_numpy())}
    t.layout = [1, 6]
    same1 = {"ptr_same": ptr(t) == p0, "values": array_obs(t.to_numpy())}
    t.layout = [4, 4]
    bigger = {"ptr_same": ptr(t) == p0, "tensor": tensor_obs(t)}
    return {"same_size": same, "same_size_again": same1, "bigger": bigger}


@scenario
def tensor_layout_setter_smaller(lite, fixtures):
    t = filled(lite, [2, 3])
    p0 = ptr(t)
    t.layout = [2, 2]
    return {"ptr_same": ptr(t) == p0, "tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_layout_reinterpret_dtype(lite, fixtures):
    t = lite.LiteTensor(shapes=[2])
    t.set_data_by_copy([1.0, 2.0])
    t.layout = lite.LiteLayout([2], "int32")
    return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_properties(lite, fixtures):
    out = {}
    for dt in ["float32", "int8", "int16", "int32", "uint8"]:
        t = lite.LiteTensor(lite.LiteLayout([2, 3], dt))
        out[dt] = {"tensor": tensor_obs(t), "device_id": t.device_id,
                   "types": [type(t.is_pinned_host).__name__, type(t.device_type).__name__,
                             type(t.device_id).__name__, type(t.is_continue).__name__, type(t.nbytes).__name__]}
    return out


@scenario
def tensor_fill_zero(lite, fixtures):
    t = filled(lite, [2, 3])
    r = call(lambda: t.fill_zero())
    return {"returns": r, "values": array_obs(t.to_numpy())}


@scenario
def tensor_fill_zero_empty(lite, fixtures):
    t = lite.LiteTensor()
    return {"fill": call(lambda: t.fill_zero(), "fill_zero can't apply on a tensor with empty layout."),
            "tensor": tensor_obs(t)}


@scenario
def tensor_update(lite, fixtures):
    t = filled(lite, [2, 3])
    return {"returns": call(lambda: t.update()), "tensor": tensor_obs(t)}


@scenario
def tensor_copy_from_adopts_layout(lite, fixtures):
    dst = filled(lite, [2, 2])
    src = filled(lite, [4, 3])
    dst.copy_from(src)
    before = array_obs(dst.to_numpy())
    src.set_data_by_copy(np.zeros((4, 3), np.float32))
    return {"dst": tensor_obs(dst), "values": before, "after_src_change": array_obs(dst.to_numpy()),
            "ptrs_differ": ptr(dst) != ptr(src)}


@scenario
def tensor_copy_from_into_empty(lite, fixtures):
    dst = lite.LiteTensor()
    src = filled(lite, [2, 3], "int32")
    dst.copy_from(src)
    return {"dst": tensor_obs(dst), "values": array_obs(dst.to_numpy())}


@scenario
def tensor_copy_from_int_dst_float_src(lite, fixtures):
    dst = filled(lite, [2, 2], "int32")
    src = filled(lite, [2, 2], "float32")
    return {"copy": call(lambda: dst.copy_from(src), "attempt to access dtype"), "dst": tensor_obs(dst)}


@scenario
def tensor_copy_from_float_dst_int_src(lite, fixtures):
    dst = filled(lite, [2, 2], "float32")
    src = filled(lite, [2, 2], "int32")
    return {"copy": call(lambda: dst.copy_from(src), "attempt to access dtype"), "dst": tensor_obs(dst)}


@scenario
def tensor_copy_from_noncontiguous_src(lite, fixtures):
    parent = filled(lite, [4, 3])
    src = parent.slice([0, 1], [4, 3])
    dst = lite.LiteTensor(lite.LiteLayout([4, 2]))
    dst.copy_from(src)
    return {"dst": tensor_obs(dst), "values": array_obs(dst.to_numpy())}


@scenario
def tensor_copy_from_into_row_slice(lite, fixtures):
    parent = filled(lite, [4, 3])
    dst = parent.slice([1], [3])
    src = lite.LiteTensor(lite.LiteLayout([2, 3]))
    src.set_data_by_copy(np.full((2, 3), 7, np.float32))
    r = call(lambda: dst.copy_from(src))
    return {"copy": r, "parent": array_obs(parent.to_numpy()), "dst": tensor_obs(dst)}


@scenario
def tensor_copy_from_into_column_slice(lite, fixtures):
    parent = filled(lite, [4, 3])
    dst = parent.slice([0, 1], [4, 3])
    src = lite.LiteTensor(lite.LiteLayout([4, 2]))
    src.set_data_by_copy(np.full((4, 2), 7, np.float32))
    r = call(lambda: dst.copy_from(src))
    return {"copy": r, "parent": array_obs(parent.to_numpy()), "dst": tensor_obs(dst)}


@scenario
def tensor_copy_from_non_tensor(lite, fixtures):
    dst = filled(lite, [2, 2])
    return call(lambda: dst.copy_from(np.zeros((2, 2), np.float32)))


@scenario
def tensor_copy_from_empty_src(lite, fixtures):
    dst = filled(lite, [2, 2])
    return {"copy": call(lambda: dst.copy_from(lite.LiteTensor()), "when tensor copy, the src tensor layout is empty."),
            "dst": tensor_obs(dst)}


@scenario
def tensor_share_memory_with(lite, fixtures):
    dst = filled(lite, [2], "int32")
    src = filled(lite, [2, 3], "float32")
    r = call(lambda: dst.share_memory_with(src))
    out = {"returns": r, "dst": tensor_obs(dst), "same_ptr": ptr(dst) == ptr(src),
           "values": array_obs(dst.to_numpy())}
    src.set_data_by_copy([9.0] * 6)
    out["after_src_write"] = array_obs(dst.to_numpy())
    return out


@scenario
def tensor_share_memory_with_non_tensor(lite, fixtures):
    dst = filled(lite, [2])
    return call(lambda: dst.share_memory_with(np.zeros(2, np.float32)))


@scenario
def tensor_share_memory_with_empty_src(lite, fixtures):
    dst = filled(lite, [2])
    return {"share": call(lambda: dst.share_memory_with(lite.LiteTensor()), "To be shared tensor with empty layout."),
            "dst": tensor_obs(dst)}


@scenario
def tensor_reshape(lite, fixtures):
    t = filled(lite, [2, 3])
    p0 = ptr(t)
    out = {}
    for shape in ([3, 2], [-1], (6, 1), [-1, 3], [1, 1, 6]):
        t.reshape(shape)
        out[str(list(shape))] = {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}
    out["ptr_same"] = ptr(t) == p0
    return out


@scenario
def tensor_reshape_errors(lite, fixtures):
    t = filled(lite, [2, 3])
    key = "The reshape inputs invalid."
    return {"count_mismatch": call(lambda: t.reshape([4]), key),
            "two_unknown": call(lambda: t.reshape([-1, -1]), key),
            "not_divisible": call(lambda: t.reshape([-1, 4]), key),
            "after": tensor_obs(t)}


@scenario
def tensor_reshape_noncontiguous(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([0, 1], [4, 3])
    r = call(lambda: s.reshape([8]))
    return {"reshape": r, "slice": tensor_obs(s), "values": call(lambda: s.to_numpy())}


@scenario
def tensor_slice_rows(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([1], [3])
    return {"slice": tensor_obs(s), "values": array_obs(s.to_numpy()), "ptr_offset": ptr(s) - ptr(t),
            "type": type(s).__name__}


@scenario
def tensor_slice_columns(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([0, 1], [4, 3])
    return {"slice": tensor_obs(s), "values": array_obs(s.to_numpy())}


@scenario
def tensor_slice_step(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([0], [4], [2])
    s2 = t.slice([0, 0], [4, 3], [3, 2])
    return {"rows": {"slice": tensor_obs(s), "values": array_obs(s.to_numpy())},
            "both": {"slice": tensor_obs(s2), "values": array_obs(s2.to_numpy())}}


@scenario
def tensor_slice_end_clamped(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([0], [10])
    s2 = t.slice([2, 1], [10, 10])
    return [{"slice": tensor_obs(s), "values": array_obs(s.to_numpy())},
            {"slice": tensor_obs(s2), "values": array_obs(s2.to_numpy())}]


@scenario
def tensor_slice_start_after_end(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([3], [1])
    return {"slice": tensor_obs(s), "to_numpy": call(lambda: s.to_numpy())}


@scenario
def tensor_slice_length_mismatch(lite, fixtures):
    t = filled(lite, [4, 3])
    return {"end": call(lambda: t.slice([0], [1, 2]), "slice with different length of start and end."),
            "step": call(lambda: t.slice([0], [1], [1, 1]), "slice with different length of start and step.")}


@scenario
def tensor_slice_too_many_dims(lite, fixtures):
    t = filled(lite, [4, 3])
    return call(lambda: t.slice([0, 0, 0], [1, 1, 1]),
                "The start and end must be the same size and less than layout ndim.")


@scenario
def tensor_slice_shares_memory(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([1], [3])
    s.set_data_by_copy([100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    out = {"parent_after_slice_write": array_obs(t.to_numpy())}
    t.set_data_by_copy(np.full((4, 3), -1.0, np.float32))
    out["slice_after_parent_write"] = array_obs(s.to_numpy())
    return out


@scenario
def tensor_slice_of_slice(lite, fixtures):
    t = filled(lite, [6, 4])
    s = t.slice([1], [5])
    s2 = s.slice([1, 1], [3, 3])
    return {"slice": tensor_obs(s2), "values": array_obs(s2.to_numpy())}


@scenario
def tensor_slice_device_id(lite, fixtures):
    t = filled(lite, [4, 3])
    return {"row": t.slice([1], [3]).device_id, "column": t.slice([0, 1], [4, 3]).device_id,
            "parent": t.device_id}


@scenario
def tensor_slice_get_data_by_share_noncontiguous(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([0, 1], [4, 3])
    return array_obs(s.get_data_by_share())


@scenario
def tensor_slice_get_data_by_share_rows(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([1], [3])
    v = s.get_data_by_share()
    v[0, 0] = 55.0
    return {"view": array_obs(v), "parent": array_obs(t.to_numpy())}


@scenario
def tensor_get_ctypes_memory(lite, fixtures):
    t = filled(lite, [2, 3])
    m = t.get_ctypes_memory()
    return {"type": type(m).__name__, "nonzero": bool(m.value), "stable": t.get_ctypes_memory().value == m.value,
            "reads": [num(v) for v in ctypes.cast(m, ctypes.POINTER(ctypes.c_float * 6)).contents]}


@scenario
def tensor_get_ctypes_memory_empty(lite, fixtures):
    return call(lambda: lite.LiteTensor().get_ctypes_memory(), "Tensor layout is not valid when get memory ptr.")


@scenario
def tensor_set_data_by_copy_list(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    r = call(lambda: t.set_data_by_copy([1, 2, 3, 4, 5, 6]))
    ti = lite.LiteTensor(lite.LiteLayout([2, 2], "int32"))
    ti.set_data_by_copy([1, -2, 3, 4])
    return {"returns": r, "tensor": tensor_obs(t), "values": array_obs(t.to_numpy()),
            "int": {"tensor": tensor_obs(ti), "values": array_obs(ti.to_numpy())}}


@scenario
def tensor_set_data_by_copy_list_int8_wraps(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([3], "int8"))
    t.set_data_by_copy([200, -1, 127])
    return array_obs(t.to_numpy())


@scenario
def tensor_set_data_by_copy_list_short(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    t.set_data_by_copy([1.0, 2.0])
    return {"tensor": tensor_obs(t), "first_two": [num(v) for v in t.to_numpy().reshape(-1)[:2]]}


@scenario
def tensor_set_data_by_copy_list_too_long(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2]))
    return call(lambda: t.set_data_by_copy([1.0, 2.0, 3.0]),
                "the length of input data to set to the tensor is too large.")


@scenario
def tensor_set_data_by_copy_list_float_into_int(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2], "int32"))
    return call(lambda: t.set_data_by_copy([1.5, 2.0]), INT_KEY)


@scenario
def tensor_set_data_by_copy_list_into_empty_tensor(lite, fixtures):
    t = lite.LiteTensor()
    return call(lambda: t.set_data_by_copy([1.0, 2.0]), "the length of input data to set to the tensor is too large.")


@scenario
def tensor_set_data_by_copy_tuple(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([3]))
    r = call(lambda: t.set_data_by_copy((1.0, 2.0, 3.0)))
    return {"returns": r, "tensor": tensor_obs(t)}


@scenario
def tensor_set_data_by_copy_ndarray_same(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([1, 3, 4, 4]))
    x = np.arange(48, dtype=np.float32).reshape(1, 3, 4, 4) / 7
    r = call(lambda: t.set_data_by_copy(x))
    return {"returns": r, "tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_copy_ndarray_adopts_shape_and_dtype(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    t.set_data_by_copy(np.array([5, 6, 7, 8], np.int32))
    out = {"int32": {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}}
    t.set_data_by_copy(np.arange(6, dtype=np.uint8).reshape(3, 2))
    out["uint8"] = {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}
    t.set_data_by_copy(np.arange(4, dtype=np.int16))
    out["int16"] = {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}
    return out


@scenario
def tensor_set_data_by_copy_ndarray_uint32(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2]))
    r = call(lambda: t.set_data_by_copy(np.array([1, 2, 3], np.uint32)))
    return {"returns": r, "tensor": tensor_obs(t), "values": call(lambda: t.to_numpy())}


@scenario
def tensor_set_data_by_copy_ndarray_uint16(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2]))
    r = call(lambda: t.set_data_by_copy(np.array([1, 2, 65535], np.uint16)))
    return {"returns": r, "tensor": tensor_obs(t)}


@scenario
def tensor_set_data_by_copy_ndarray_noncontiguous(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.arange(12, dtype=np.float32).reshape(2, 6)[:, ::2]
    return call(lambda: t.set_data_by_copy(x), "input numpy is not continuous")


@scenario
def tensor_set_data_by_copy_ndarray_fortran(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    return call(lambda: t.set_data_by_copy(x), "input numpy is not continuous")


def _copy_unsupported_scenario(label: str, dtype: str, key: str | None) -> None:
    def fn(lite, fixtures):
        t = lite.LiteTensor(lite.LiteLayout([3]))
        r = call(lambda: t.set_data_by_copy(np.arange(3).astype(dtype)), key)
        return r

    fn.__name__ = "tensor_set_data_by_copy_ndarray_" + label
    scenario(fn)


for _label, _dt, _key in [("float64", "float64", None), ("int64", "int64", None), ("bool", "bool", None),
                          ("float16", "float16", None)]:
    _copy_unsupported_scenario(_label, _dt, _key)


@scenario
def tensor_set_data_by_copy_ndarray_0d(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([3]))
    return call(lambda: t.set_data_by_copy(np.array(1.0, np.float32)), "Tensor layout is empty")


@scenario
def tensor_set_data_by_copy_ctypes_without_length(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    buf = (ctypes.c_float * 6)(*range(6))
    return call(lambda: t.set_data_by_copy(buf), CTYPES_LENGTH_KEY)


@scenario
def tensor_set_data_by_copy_ctypes_with_length(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    buf = (ctypes.c_float * 6)(*range(6))
    r = call(lambda: t.set_data_by_copy(buf, 24))
    buf[0] = 99.0
    return {"returns": r, "tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_copy_ctypes_wrong_length(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    buf = (ctypes.c_float * 6)(*range(6))
    return call(lambda: t.set_data_by_copy(buf, 12), CTYPES_LENGTH_KEY)


@scenario
def tensor_set_data_by_copy_address(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.arange(6, dtype=np.float32) * 3
    r = call(lambda: t.set_data_by_copy(x.ctypes.data, x.nbytes))
    return {"returns": r, "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_copy_ctypes_with_layout(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    buf = (ctypes.c_int * 4)(10, 20, 30, 40)
    r = call(lambda: t.set_data_by_copy(buf, layout=lite.LiteLayout([4], "int32")))
    return {"returns": r, "tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_copy_bytes(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([3]))
    data = np.array([1.5, 2.5, 3.5], np.float32).tobytes()
    r = call(lambda: t.set_data_by_copy(data, 12))
    return {"returns": r, "values": call(lambda: t.to_numpy())}


@scenario
def tensor_set_data_by_copy_layout_then_list(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([6]))
    r = call(lambda: t.set_data_by_copy([1, 2, 3, 4, 5, 6], layout=[3, 2]))
    return {"returns": r, "tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_copy_noncontiguous_tensor(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([0, 1], [4, 3])
    return call(lambda: s.set_data_by_copy([0.0] * 8), "set_data_by_copy can only apply in continue tensor.")


@scenario
def tensor_set_data_by_copy_is_copy(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([3]))
    x = np.array([1, 2, 3], np.float32)
    t.set_data_by_copy(x)
    x[0] = 100
    return {"values": array_obs(t.to_numpy()), "ptr_differs": ptr(t) != x.ctypes.data}


@scenario
def tensor_set_data_by_share_same_nbytes(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    r = call(lambda: t.set_data_by_share(x))
    out = {"returns": r, "tensor": tensor_obs(t), "ptr_is_array": ptr(t) == x.ctypes.data}
    x[0, 0] = 99.0
    out["values_after_array_write"] = array_obs(t.to_numpy())
    return out


@scenario
def tensor_set_data_by_share_same_nbytes_other_shape(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    t.set_data_by_share(x)
    return tensor_obs(t)


@scenario
def tensor_set_data_by_share_int_into_float_same_nbytes(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2]))
    x = np.array([1065353216, 1073741824], np.int32)  # the bits of 1.0f and 2.0f
    t.set_data_by_share(x)
    return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_share_different_nbytes(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.array([1065353216, 1073741824, 1077936128, 1082130432], np.int32)
    t.set_data_by_share(x)
    return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_share_float64(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2]))
    x = np.array([1.0, 2.0, 3.0], np.float64)
    t.set_data_by_share(x)
    return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_share_noncontiguous_array(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.arange(12, dtype=np.float32).reshape(2, 6)[:, ::2]
    return call(lambda: t.set_data_by_share(x), "input numpy is not continuous")


@scenario
def tensor_set_data_by_share_noncontiguous_tensor(lite, fixtures):
    t = filled(lite, [4, 3])
    s = t.slice([0, 1], [4, 3])
    return call(lambda: s.set_data_by_share(np.zeros((4, 2), np.float32)),
                "set_data_by_share can only apply in continue tensor.")


@scenario
def tensor_set_data_by_share_ctypes(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    buf = (ctypes.c_float * 6)(*range(6))
    r = call(lambda: t.set_data_by_share(buf))
    buf[1] = 42.0
    return {"returns": r, "values": array_obs(t.to_numpy()), "ptr_is_buffer": ptr(t) == ctypes.addressof(buf)}


@scenario
def tensor_set_data_by_share_ctypes_length(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    buf = (ctypes.c_float * 6)(*range(6))
    return {"right": call(lambda: t.set_data_by_share(buf, 24)),
            "wrong": call(lambda: t.set_data_by_share(buf, 12), "the data length is not match.")}


@scenario
def tensor_set_data_by_share_address_with_layout(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.array([7, 8, 9, 10], np.int32)
    r = call(lambda: t.set_data_by_share(x.ctypes.data, 0, lite.LiteLayout([4], "int32")))
    x[3] = 11
    return {"returns": r, "tensor": tensor_obs(t), "values": array_obs(t.to_numpy())}


@scenario
def tensor_set_data_by_share_array_ignores_length(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    x = np.arange(6, dtype=np.float32)
    return {"wrong_length": call(lambda: t.set_data_by_share(x, 5), "the data length is not match."),
            "tensor": tensor_obs(t)}


@scenario
def tensor_set_data_by_share_list(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([2]))
    return call(lambda: t.set_data_by_share([1.0, 2.0]), "argument 2")


@scenario
def tensor_set_data_by_share_into_empty_tensor(lite, fixtures):
    t = lite.LiteTensor()
    x = np.array([1.0, 2.0, 3.0], np.float32)
    r = call(lambda: t.set_data_by_share(x))
    return {"returns": r, "tensor": tensor_obs(t), "values": call(lambda: t.to_numpy())}


@scenario
def tensor_get_data_by_share(lite, fixtures):
    t = filled(lite, [2, 3])
    v = t.get_data_by_share()
    out = {"view": array_obs(v), "owndata": bool(v.flags["OWNDATA"]), "writeable": bool(v.flags["WRITEABLE"]),
           "type": type(v).__name__}
    v[1, 2] = -5.0
    out["to_numpy_after_view_write"] = array_obs(t.to_numpy())
    t.set_data_by_copy([3.0] * 6)
    out["view_after_tensor_write"] = array_obs(v)
    return out


@scenario
def tensor_get_data_by_share_dtypes(lite, fixtures):
    out = {}
    for dt in ["int8", "int16", "int32", "uint8", "float32"]:
        t = filled(lite, [3], dt)
        out[dt] = array_obs(t.get_data_by_share())
        del t
    return out


@scenario
def tensor_to_numpy(lite, fixtures):
    t = filled(lite, [2, 3])
    a = t.to_numpy()
    out = {"array": array_obs(a), "owndata": bool(a.flags["OWNDATA"]), "c_contiguous": bool(a.flags["C_CONTIGUOUS"]),
           "writeable": bool(a.flags["WRITEABLE"])}
    a[0, 0] = 77
    out["tensor_after_array_write"] = array_obs(t.to_numpy())
    return out


@scenario
def tensor_to_numpy_empty(lite, fixtures):
    return array_obs(lite.LiteTensor().to_numpy())


@scenario
def tensor_to_numpy_dtypes(lite, fixtures):
    out = {}
    for dt in ["int8", "int16", "int32", "uint8", "float32"]:
        out[dt] = array_obs(filled(lite, [2, 2], dt).to_numpy())
    return out


@scenario
def tensor_repr(lite, fixtures):
    return [repr(lite.LiteTensor(shapes=[1, 2], dtype="int8")), repr(lite.LiteTensor())]


@scenario
def tensor_concat(lite, fixtures):
    ts = [filled(lite, [2, 3]) for _ in range(3)]
    for i, t in enumerate(ts):
        t.set_data_by_copy((np.arange(6, dtype=np.float32) + 10 * i).reshape(2, 3))
    c0 = lite.LiteTensorConcat(ts, 0)
    c1 = lite.LiteTensorConcat(ts, 1)
    return {"dim0": {"tensor": tensor_obs(c0), "values": array_obs(c0.to_numpy())},
            "dim1": {"tensor": tensor_obs(c1), "values": array_obs(c1.to_numpy())},
            "type": type(c0).__name__}


@scenario
def tensor_concat_is_copy(lite, fixtures):
    a, b = filled(lite, [2]), filled(lite, [2])
    c = lite.LiteTensorConcat([a, b], 0)
    a.set_data_by_copy([50.0, 51.0])
    return array_obs(c.to_numpy())


@scenario
def tensor_concat_device(lite, fixtures):
    D = lite.LiteDeviceType
    a, b = lite.LiteTensor(shapes=[2, 3], device_id=3), lite.LiteTensor(shapes=[2, 3], device_id=3)
    a.fill_zero()
    b.fill_zero()
    out = {}
    for label, args in [("default", ()), ("cpu_5", (D.LITE_CPU, 5)), ("device_default_5", (D.LITE_DEVICE_DEFAULT, 5)),
                        ("cpu_default_id", (D.LITE_CPU,))]:
        c = lite.LiteTensorConcat([a, b], 0, *args)
        out[label] = {"device_type": int(c.device_type), "device_id": c.device_id}
    return out


@scenario
def tensor_concat_device_of_copied_tensors(lite, fixtures):
    a, b = filled(lite, [2, 3]), filled(lite, [2, 3])
    c = lite.LiteTensorConcat([a, b], 0)
    return {"device_type": int(c.device_type), "device_id": c.device_id}


@scenario
def tensor_concat_int(lite, fixtures):
    a, b = filled(lite, [2], "int32"), filled(lite, [3], "int32")
    c = lite.LiteTensorConcat([a, b], 0)
    return {"tensor": tensor_obs(c), "values": array_obs(c.to_numpy())}


@scenario
def tensor_concat_shape_mismatch(lite, fixtures):
    a, b = filled(lite, [2, 3]), filled(lite, [2, 4])
    return call(lambda: lite.LiteTensorConcat([a, b], 0), "the shape of tensors is not same!")


@scenario
def tensor_concat_dtype_mismatch(lite, fixtures):
    a, b = filled(lite, [2, 3]), filled(lite, [2, 3], "int32")
    return call(lambda: lite.LiteTensorConcat([a, b], 0), "the dtype of tensors is not same!")


@scenario
def tensor_concat_ndim_mismatch(lite, fixtures):
    a, b = filled(lite, [2, 3]), filled(lite, [2, 3, 1])
    return call(lambda: lite.LiteTensorConcat([a, b], 0), "the dim size of tensors is not same!")


@scenario
def tensor_concat_dim_out_of_range(lite, fixtures):
    a, b = filled(lite, [2, 3]), filled(lite, [2, 3])
    return call(lambda: lite.LiteTensorConcat([a, b], 2), "the dim in concat is error.")


@scenario
def tensor_concat_single(lite, fixtures):
    a = filled(lite, [2, 3])
    c = lite.LiteTensorConcat([a], 0)
    return {"tensor": tensor_obs(c), "values": array_obs(c.to_numpy()), "ptr_differs": ptr(c) != ptr(a)}


# ============================================================================================ 5. LiteOptions

OPTION_FIELDS = [
    "weight_preprocess", "fuse_preprocess", "fake_next_exec", "var_sanity_check_first_run", "const_shape",
    "force_dynamic_alloc", "force_output_dynamic_alloc", "force_output_use_user_specified_memory",
    "no_profiling_on_shape_change", "jit_level", "comp_node_seq_record_level", "graph_opt_level", "async_exec_level",
    "enable_nchw44", "enable_nchw44_dot", "enable_nchw88", "enable_nhwcd4", "enable_nchw4", "enable_nchw32",
    "enable_nchw64",
]  # fmt: skip


@scenario
def options_defaults(lite, fixtures):
    o = lite.LiteOptions()
    return {f: [getattr(o, f), type(getattr(o, f)).__name__] for f in OPTION_FIELDS}


@scenario
def options_repr(lite, fixtures):
    o = lite.LiteOptions()
    default = repr(o)
    o.weight_preprocess = True
    o.graph_opt_level = 0
    o.enable_nchw44 = 1
    return [default, repr(o)]


@scenario
def options_set_fields(lite, fixtures):
    o = lite.LiteOptions()
    out = {}
    for i, f in enumerate(OPTION_FIELDS):
        setattr(o, f, True if i % 2 else 3)
        out[f] = [getattr(o, f), type(getattr(o, f)).__name__]
    return out


@scenario
def options_unknown_attribute(lite, fixtures):
    o = lite.LiteOptions()
    r = call(lambda: setattr(o, "record_level", 1))
    return {"set": r, "get": call(lambda: o.record_level),
            "field_unchanged": o.comp_node_seq_record_level}


@scenario
def options_non_int_values(lite, fixtures):
    o = lite.LiteOptions()
    return {"float": call(lambda: setattr(o, "weight_preprocess", 1.5), INT_KEY),
            "str": call(lambda: setattr(o, "graph_opt_level", "2"), INT_KEY),
            "none": call(lambda: setattr(o, "const_shape", None), INT_KEY),
            "after": [o.weight_preprocess, o.graph_opt_level, o.const_shape]}


@scenario
def options_numpy_int(lite, fixtures):
    o = lite.LiteOptions()
    return {"set": call(lambda: setattr(o, "graph_opt_level", np.int64(1))), "get": o.graph_opt_level}


@scenario
def options_instances_independent(lite, fixtures):
    a, b = lite.LiteOptions(), lite.LiteOptions()
    a.const_shape = 1
    return [a.const_shape, b.const_shape]


# ============================================================================================ 6. LiteConfig


@scenario
def config_defaults(lite, fixtures):
    c = lite.LiteConfig()
    return {
        "has_compression": c.has_compression, "device_id": c.device_id, "device_type": c.device_type,
        "device_type_type": type(c.device_type).__name__, "backend": c.backend,
        "bare_model_cryption_name": c.bare_model_cryption_name, "options_type": type(c.options).__name__,
        "options": {f: getattr(c.options, f) for f in OPTION_FIELDS},
        "auto_optimize_inference": c.auto_optimize_inference, "discrete_input_name": plain(c.discrete_input_name),
        "use_loader_dynamic_param": c.use_loader_dynamic_param,
    }


@scenario
def config_device_type_argument(lite, fixtures):
    D = lite.LiteDeviceType
    return [lite.LiteConfig(D.LITE_CUDA).device_type, lite.LiteConfig(device_type=D.LITE_DEVICE_DEFAULT).device_type,
            lite.LiteConfig(D.LITE_ATLAS).device_type]


@scenario
def config_option_argument_copied(lite, fixtures):
    o = lite.LiteOptions()
    o.weight_preprocess = 1
    c = lite.LiteConfig(option=o)
    o.fuse_preprocess = 1
    return {"weight_preprocess": c.options.weight_preprocess, "fuse_preprocess": c.options.fuse_preprocess,
            "is": c.options is o}


@scenario
def config_options_mutable_in_place(lite, fixtures):
    c = lite.LiteConfig()
    c.options.const_shape = 1
    c.options.graph_opt_level = 0
    return [c.options.const_shape, c.options.graph_opt_level]


@scenario
def config_options_assignment_copies(lite, fixtures):
    c = lite.LiteConfig()
    o = lite.LiteOptions()
    o.jit_level = 1
    c.options = o
    o.jit_level = 2
    return {"jit_level": c.options.jit_level,
            "wrong_type": call(lambda: setattr(c, "options", 5), "expected LiteOptions instance, got int")}


@scenario
def config_bare_model_cryption_name(lite, fixtures):
    c = lite.LiteConfig()
    out = {}
    c.bare_model_cryption_name = "AES_default"
    out["str"] = [c.bare_model_cryption_name, type(c.bare_model_cryption_name).__name__]
    c.bare_model_cryption_name = b"RC4_default"
    out["bytes"] = [c.bare_model_cryption_name, type(c.bare_model_cryption_name).__name__]
    out["int"] = call(lambda: setattr(c, "bare_model_cryption_name", 5), "name should be str or bytes type.")
    return out


@scenario
def config_discrete_input_name_bytes(lite, fixtures):
    c = lite.LiteConfig()
    c.discrete_input_name = b"data"
    return plain(c.discrete_input_name)


@scenario
def config_discrete_input_name_str(lite, fixtures):
    c = lite.LiteConfig()
    return {"set": call(lambda: setattr(c, "discrete_input_name", "data")), "get": plain(c.discrete_input_name)}


@scenario
def config_field_types(lite, fixtures):
    c = lite.LiteConfig()
    return {"has_compression_str": call(lambda: setattr(c, "has_compression", "x"), INT_KEY),
            "device_id_float": call(lambda: setattr(c, "device_id", 1.5), INT_KEY),
            "device_type_enum": call(lambda: setattr(c, "device_type", lite.LiteDeviceType.LITE_CUDA)),
            "device_type_after": [c.device_type, type(c.device_type).__name__]}


@scenario
def config_repr(lite, fixtures):
    return call(lambda: repr(lite.LiteConfig()))


@scenario
def config_repr_device_id_2(lite, fixtures):
    c = lite.LiteConfig()
    c.device_id = 2
    return call(lambda: repr(c))


@scenario
def config_extra_config(lite, fixtures):
    E = lite.LiteExtraConfig
    a, b = E(), E(True)
    return {"default": a.disable_configure_by_model_info, "true": b.disable_configure_by_model_info,
            "type": type(b.disable_configure_by_model_info).__name__, "repr": [repr(a), repr(b)]}


# ============================================================================================ 7. LiteIO / LiteNetworkIO


@scenario
def io_defaults(lite, fixtures):
    io = lite.LiteIO("data")
    return {"io": io_obs(io), "types": [type(io.name).__name__, type(io.is_host).__name__,
                                        type(io.io_type).__name__]}


@scenario
def io_bytes_name(lite, fixtures):
    return io_obs(lite.LiteIO(b"data"))


@scenario
def io_with_arguments(lite, fixtures):
    lay = lite.LiteLayout([2, 4, 4], "int8")
    io = lite.LiteIO("x", False, lite.LiteIOType.LITE_IO_SHAPE, lay)
    out = {"io": io_obs(io), "layout_is": io.config_layout is lay}
    lay.shapes = [9]
    out["after_layout_change"] = layout_obs(io.config_layout)
    return out


@scenario
def io_config_layout_assignment(lite, fixtures):
    io = lite.LiteIO("x")
    lay = lite.LiteLayout([3, 3])
    io.config_layout = lay
    lay.shapes = [1]
    io.config_layout.shapes = [5, 5]
    return {"layout": layout_obs(io.config_layout),
            "wrong_type": call(lambda: setattr(io, "config_layout", [1, 2]), "expected LiteLayout instance, got list")}


@scenario
def io_hash_and_eq(lite, fixtures):
    io = lite.LiteIO("data")
    other = lite.LiteIO("data")
    d = {io: 1}
    return {"hash": hash(io) == hash("data"), "eq_other": io == other, "eq_self": io == io,
            "dict_lookup_other": other in d, "dict_lookup_self": io in d}


@scenario
def io_repr(lite, fixtures):
    return [repr(lite.LiteIO("data")),
            repr(lite.LiteIO("x", False, lite.LiteIOType.LITE_IO_SHAPE, lite.LiteLayout([1, 2], "uint8")))]


@scenario
def io_name_setter(lite, fixtures):
    io = lite.LiteIO("data")
    out = {}
    io.name = "y"
    out["str"] = io.name
    io.name = b"z"
    out["bytes"] = io.name
    out["int"] = call(lambda: setattr(io, "name", 5), "name should be str or bytes type.")
    return out


@scenario
def io_field_types(lite, fixtures):
    io = lite.LiteIO("data")
    return {"is_host_str": call(lambda: setattr(io, "is_host", "x"), INT_KEY),
            "io_type_enum": call(lambda: setattr(io, "io_type", lite.LiteIOType.LITE_IO_SHAPE)),
            "io_type_after": [io.io_type, type(io.io_type).__name__]}


@scenario
def networkio_defaults(lite, fixtures):
    n = lite.LiteNetworkIO()
    return {"inputs": n.inputs, "outputs": n.outputs, "types": [type(n.inputs).__name__, type(n.outputs).__name__]}


@scenario
def networkio_construct(lite, fixtures):
    n = lite.LiteNetworkIO(inputs=[lite.LiteIO("a"), ["b", False, lite.LiteIOType.LITE_IO_SHAPE]], outputs=[["c"]])
    return {"inputs": [io_obs(i) for i in n.inputs], "outputs": [io_obs(o) for o in n.outputs],
            "types": [type(i).__name__ for i in n.inputs + n.outputs]}


@scenario
def networkio_bad_item(lite, fixtures):
    key = "the param to construct LiteNetworkIO must be list of the LiteIO member or the LiteIO."
    return {"str_input": call(lambda: lite.LiteNetworkIO(inputs=["a"]), key),
            "int_output": call(lambda: lite.LiteNetworkIO(outputs=[5]), key)}


@scenario
def networkio_tuple_item(lite, fixtures):
    key = "the param to construct LiteNetworkIO must be list of the LiteIO member or the LiteIO."
    return call(lambda: [io_obs(i) for i in lite.LiteNetworkIO(inputs=[("b", False)]).inputs], key)


@scenario
def networkio_add(lite, fixtures):
    n = lite.LiteNetworkIO()
    io = lite.LiteIO("a")
    n.add_input(io)
    n.add_input("x", False, lite.LiteIOType.LITE_IO_SHAPE, lite.LiteLayout([1, 2]))
    n.add_output("y")
    n.add_output(lite.LiteIO(b"z", True))
    return {"inputs": [io_obs(i) for i in n.inputs], "outputs": [io_obs(o) for o in n.outputs],
            "same_object": n.inputs[0] is io}


@scenario
def networkio_repr(lite, fixtures):
    n = lite.LiteNetworkIO()
    empty = repr(n)
    n.add_input("data", layout=lite.LiteLayout([1, 3]))
    n.add_output("out", False)
    return [empty, repr(n)]


# ============================================================================================ 8. LiteNetwork: basics


@scenario
def net_construct_default(lite, fixtures):
    net = lite.LiteNetwork()
    return {"config_type": type(net.config).__name__, "io_type": type(net.network_io).__name__,
            "model_bytes": net.model_bytes is None, "inputs": len(net.network_io.inputs)}


@scenario
def net_construct_keeps_config_object(lite, fixtures):
    c = lite.LiteConfig()
    io = lite.LiteNetworkIO()
    net = lite.LiteNetwork(c, io)
    return [net.config is c, net.network_io is io]


@scenario
def net_construct_bad_config(lite, fixtures):
    return call(lambda: lite.LiteNetwork("x"), "expected LiteConfig instance instead of str")


@scenario
def net_construct_bad_io(lite, fixtures):
    return call(lambda: lite.LiteNetwork(None, "x"))


@scenario
def net_repr(lite, fixtures):
    return call(lambda: repr(lite.LiteNetwork()))


# ---------------------------------------------------------------------------------------------- lifecycle


@scenario
def net_threads_default(lite, fixtures):
    net = lite.LiteNetwork()
    before = net.threads_number
    net.load(fx(fixtures, "resnet18_small.mge"))
    return [before, net.threads_number, type(before).__name__]


@scenario
def net_threads_set_before_load(lite, fixtures):
    net = lite.LiteNetwork()
    net.threads_number = 2
    before = net.threads_number
    net.load(fx(fixtures, "resnet18_small.mge"))
    out = run_resnet(net, resnet_input(fixtures))
    return {"before": before, "after": net.threads_number, "output": array_obs(out)}


@scenario
def net_threads_zero(lite, fixtures):
    net = lite.LiteNetwork()
    net.threads_number = 0
    before = net.threads_number
    net.load(fx(fixtures, "resnet18_small.mge"))
    return {"before": before, "after": net.threads_number}


@scenario
def net_threads_negative(lite, fixtures):
    net = lite.LiteNetwork()
    r = call(lambda: setattr(net, "threads_number", -1))
    return {"set": r, "get": net.threads_number}


@scenario
def net_threads_after_load(lite, fixtures):
    net = resnet(lite, fixtures)
    return {"set": call(lambda: setattr(net, "threads_number", 2),
                        "set_cpu_threads_number should be used before model loaded."),
            "get": net.threads_number}


@scenario
def net_inplace_mode(lite, fixtures):
    net = lite.LiteNetwork()
    before = net.is_cpu_inplace_mode()
    r = call(lambda: net.enable_cpu_inplace_mode())
    mid = net.is_cpu_inplace_mode()
    net.load(fx(fixtures, "resnet18_small.mge"))
    out = run_resnet(net, resnet_input(fixtures))
    again = call(lambda: net.enable_cpu_inplace_mode(), "set_cpu_inplace_mode should be used before model loaded.")
    return {"before": before, "enable": r, "after_enable": mid, "after_load": net.is_cpu_inplace_mode(),
            "output": array_obs(out), "after_load_enable": again}


@scenario
def net_inplace_with_threads(lite, fixtures):
    net = lite.LiteNetwork()
    net.threads_number = 2
    net.enable_cpu_inplace_mode()
    net.load(fx(fixtures, "resnet18_small.mge"))
    out = run_resnet(net, resnet_input(fixtures))
    return {"threads": net.threads_number, "inplace": net.is_cpu_inplace_mode(), "output": array_obs(out)}


@scenario
def net_device_id(lite, fixtures):
    net = lite.LiteNetwork()
    out = {"default": net.device_id}
    out["set"] = call(lambda: setattr(net, "device_id", 1))
    out["get"] = net.device_id
    net.load(fx(fixtures, "resnet18_small.mge"))
    out["after_load"] = net.device_id
    out["set_after_load"] = call(lambda: setattr(net, "device_id", 0),
                                 "set_device_id should be used before model loaded.")
    return out


@scenario
def net_stream_id(lite, fixtures):
    net = lite.LiteNetwork()
    out = {"default": net.stream_id}
    out["set"] = call(lambda: setattr(net, "stream_id", 1))
    out["get"] = net.stream_id
    net.load(fx(fixtures, "resnet18_small.mge"))
    out["after_load"] = net.stream_id
    out["set_after_load"] = call(lambda: setattr(net, "stream_id", 0),
                                 "set_stream_id should be used before model loaded.")
    return out


@scenario
def net_use_tensorrt(lite, fixtures):
    net = lite.LiteNetwork()
    out = {"before": call(lambda: net.use_tensorrt())}
    net.load(fx(fixtures, "resnet18_small.mge"))
    out["output"] = array_obs(run_resnet(net, resnet_input(fixtures)))
    out["after"] = call(lambda: net.use_tensorrt(), "use_tensorrt should be used before model loaded.")
    return out


@scenario
def net_share_runtime_memory(lite, fixtures):
    src = resnet(lite, fixtures)
    unloaded = lite.LiteNetwork()
    net = lite.LiteNetwork()
    out = {"loaded_src": call(lambda: net.share_runtime_memroy(src)),
           "unloaded_src": call(lambda: net.share_runtime_memroy(unloaded))}
    net.load(fx(fixtures, "resnet18_small.mge"))
    out["output"] = array_obs(run_resnet(net, resnet_input(fixtures)))
    out["after_load"] = call(lambda: net.share_runtime_memroy(src),
                             "share_runtime_memory_with should be used before model loaded.")
    return out


@scenario
def net_share_runtime_memory_non_network(lite, fixtures):
    net = lite.LiteNetwork()
    return call(lambda: net.share_runtime_memroy("x"))


@scenario
def net_share_weights_with(lite, fixtures):
    src = resnet(lite, fixtures)
    dst = lite.LiteNetwork()
    r = call(lambda: dst.share_weights_with(src))
    x = resnet_input(fixtures)
    a = run_resnet(src, x)
    b = run_resnet(dst, x * 2)
    c = run_resnet(src, x)
    return {"returns": r, "inputs": dst.get_all_input_name(), "outputs": dst.get_all_output_name(),
            "src": array_obs(a), "dst_double_input": array_obs(b), "src_again": array_obs(c)}


@scenario
def net_share_weights_with_unloaded_src(lite, fixtures):
    src = lite.LiteNetwork()
    dst = lite.LiteNetwork()
    return call(lambda: dst.share_weights_with(src),
                "shared_weight_with_network should be used after the src network loaded.")


@scenario
def net_share_weights_with_loaded_dst(lite, fixtures):
    src = resnet(lite, fixtures)
    dst = lite.LiteNetwork()
    dst.load(fx(fixtures, "two_in_two_out.mge"))
    r = call(lambda: dst.share_weights_with(src))
    return {"returns": r, "inputs": dst.get_all_input_name(),
            "output": array_obs(run_resnet(dst, resnet_input(fixtures)))}


@scenario
def net_algo_policy(lite, fixtures):
    S = lite.LiteAlgoSelectStrategy
    net = lite.LiteNetwork()
    out = {"before": call(lambda: net.set_network_algo_policy(S.LITE_ALGO_HEURISTIC | S.LITE_ALGO_REPRODUCIBLE))}
    net.load(fx(fixtures, "resnet18_small.mge"))
    out["after"] = call(lambda: net.set_network_algo_policy(S.LITE_ALGO_PROFILE, 2, True))
    out["zero"] = call(lambda: net.set_network_algo_policy(0))
    out["hundred"] = call(lambda: net.set_network_algo_policy(100))
    return out


@scenario
def net_workspace_limit(lite, fixtures):
    net = lite.LiteNetwork()
    out = {"before": call(lambda: net.set_network_algo_workspace_limit(1 << 20),
                          "set_network_algo_policy should be used after model loaded.")}
    net.load(fx(fixtures, "resnet18_small.mge"))
    out["after"] = call(lambda: net.set_network_algo_workspace_limit(1 << 20))
    out["output"] = array_obs(run_resnet(net, resnet_input(fixtures)))
    return out


@scenario
def net_global_layout_transform_before_load(lite, fixtures):
    net = lite.LiteNetwork()
    return call(lambda: net.enable_global_layout_transform())


@scenario
def net_global_layout_transform_after_load(lite, fixtures):
    net = resnet(lite, fixtures)
    return call(lambda: net.enable_global_layout_transform(),
                "enable_global_layout_transform should be used before model loaded.")


@scenario
def net_dump_layout_transform_model_without_transform(lite, fixtures):
    net = resnet(lite, fixtures)
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "out.mge")
        r = call(lambda: net.dump_layout_transform_model(p), "should call enable_global_layout_transform before")
        return {"dump": r, "exists": os.path.exists(p)}


@scenario
def net_extra_configure(lite, fixtures):
    net = lite.LiteNetwork()
    out = {"before": call(lambda: net.extra_configure(lite.LiteExtraConfig(True)))}
    net.load(fx(fixtures, "resnet18_small.mge"))
    out["output"] = array_obs(run_resnet(net, resnet_input(fixtures)))
    out["after"] = call(lambda: net.extra_configure(lite.LiteExtraConfig()),
                        "disable_configure_by_model_info should be configured before model loaded.")
    return out


@scenario
def net_register_async_callback_before_load_no_forward(lite, fixtures):
    net = lite.LiteNetwork()
    r = call(lambda: net.async_with_callback(lambda: 0))
    net.load(fx(fixtures, "resnet18_small.mge"))
    return r


@scenario
def net_register_start_callback_after_load_no_forward(lite, fixtures):
    net = resnet(lite, fixtures)
    return call(lambda: net.set_start_callback(lambda ios: 0))


@scenario
def net_register_finish_callback_before_load_no_forward(lite, fixtures):
    net = lite.LiteNetwork()
    r = call(lambda: net.set_finish_callback(lambda ios: 0))
    net.load(fx(fixtures, "resnet18_small.mge"))
    return r


@scenario
def net_register_dumps_no_forward(lite, fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        net = lite.LiteNetwork()
        out = {"before": [call(lambda: net.enable_profile_performance(os.path.join(tmp, "p.json"))),
                          call(lambda: net.io_txt_dump(os.path.join(tmp, "io.txt"))),
                          call(lambda: net.io_bin_dump(tmp))]}
        net.load(fx(fixtures, "resnet18_small.mge"))
        out["after"] = [call(lambda: net.enable_profile_performance(os.path.join(tmp, "p2.json"))),
                        call(lambda: net.io_txt_dump(os.path.join(tmp, "io2.txt"))),
                        call(lambda: net.io_bin_dump(tmp))]
        return out


@scenario
def net_get_io_tensor_before_load(lite, fixtures):
    net = lite.LiteNetwork()
    return call(lambda: net.get_io_tensor("data"), "get_io_tensor should be used after model loaded.")


@scenario
def net_forward_before_load(lite, fixtures):
    net = lite.LiteNetwork()
    return call(lambda: net.forward(), "forward should be used after model loaded.")


@scenario
def net_wait_before_load(lite, fixtures):
    net = lite.LiteNetwork()
    return call(lambda: net.wait(), "wait should be used after model loaded.")


@scenario
def net_names_before_load(lite, fixtures):
    net = lite.LiteNetwork()
    return {"all_inputs": call(lambda: net.get_all_input_name()),
            "all_outputs": call(lambda: net.get_all_output_name()),
            "input_0": call(lambda: net.get_input_name(0),
                            "The input tensor index is large than the total inputs number."),
            "output_0": call(lambda: net.get_output_name(0),
                             "The output tensor index is large than the total outputs number.")}


@scenario
def net_names_after_load(lite, fixtures):
    net = lite.LiteNetwork()
    net.load(fx(fixtures, "two_in_two_out.mge"))
    return {"all_inputs": net.get_all_input_name(), "all_outputs": net.get_all_output_name(),
            "by_index": [net.get_input_name(0), net.get_input_name(1), net.get_output_name(0),
                         net.get_output_name(1)],
            "input_2": call(lambda: net.get_input_name(2),
                            "The input tensor index is large than the total inputs number."),
            "output_2": call(lambda: net.get_output_name(2),
                             "The output tensor index is large than the total outputs number.")}


@scenario
def net_get_discrete_tensor_before_load(lite, fixtures):
    net = lite.LiteNetwork()
    return call(lambda: net.get_discrete_tensor("data", 0), "should be used after model loaded.")


@scenario
def net_static_memory_alloc_info(lite, fixtures):
    net = resnet(lite, fixtures)
    with tempfile.TemporaryDirectory() as tmp:
        return call(lambda: net.get_static_memory_alloc_info(tmp), "Doesn't support get_static_memory_alloc_info()")


@scenario
def net_wait_without_forward(lite, fixtures):
    net = resnet(lite, fixtures)
    return [call(lambda: net.wait()), call(lambda: net.wait())]


# ---------------------------------------------------------------------------------------------- io tensors


@scenario
def net_get_io_tensor_layouts(lite, fixtures):
    net = resnet(lite, fixtures)
    inp = net.get_io_tensor("data")
    out = net.get_io_tensor("logits")
    return {"input": tensor_obs(inp), "output": tensor_obs(out), "bytes_name": tensor_obs(net.get_io_tensor(b"data")),
            "type": type(inp).__name__}


@scenario
def net_get_io_tensor_unknown_name(lite, fixtures):
    net = resnet(lite, fixtures)
    return call(lambda: net.get_io_tensor("nope"), "tensor name must be")


@scenario
def net_get_io_tensor_phase(lite, fixtures):
    P = lite.LiteTensorPhase
    net = resnet(lite, fixtures)
    return {
        "input_as_input": call(lambda: net.get_io_tensor("data", P.LITE_INPUT)),
        "output_as_output": call(lambda: net.get_io_tensor("logits", P.LITE_OUTPUT)),
        "input_as_output": call(lambda: net.get_io_tensor("data", P.LITE_OUTPUT), "tensor name must be"),
        "output_as_input": call(lambda: net.get_io_tensor("logits", P.LITE_INPUT), "tensor name must be"),
    }


@scenario
def net_get_io_tensor_new_wrapper_each_call(lite, fixtures):
    net = resnet(lite, fixtures)
    t1 = net.get_io_tensor("data")
    t2 = net.get_io_tensor("data")
    out = {"is": t1 is t2, "same_ptr": ptr(t1) == ptr(t2)}
    t1.layout = [2, 3, 64, 64]
    out["layout_through_other"] = layout_obs(t2.layout)
    return out


@scenario
def net_input_tensor_device(lite, fixtures):
    net = resnet(lite, fixtures)
    t = net.get_io_tensor("data")
    return {"device_type": int(t.device_type), "device_id": t.device_id, "is_pinned_host": t.is_pinned_host}


@scenario
def net_output_device_id(lite, fixtures):
    net = resnet(lite, fixtures)
    before = net.get_io_tensor("logits").device_id
    run_resnet(net, resnet_input(fixtures))
    return {"before_forward": before, "after_forward": net.get_io_tensor("logits").device_id,
            "device_type": int(net.get_io_tensor("logits").device_type)}


@scenario
def net_io_layouts_two_in_two_out(lite, fixtures):
    net = lite.LiteNetwork()
    net.load(fx(fixtures, "two_in_two_out.mge"))
    return {n: tensor_obs(net.get_io_tensor(n)) for n in net.get_all_input_name() + net.get_all_output_name()}


@scenario
def net_io_layouts_int_models(lite, fixtures):
    out = {}
    for model in ["int32_input", "uint8_input"]:
        net = lite.LiteNetwork()
        net.load(fx(fixtures, model + ".mge"))
        out[model] = {n: layout_obs(net.get_io_tensor(n).layout)
                      for n in net.get_all_input_name() + net.get_all_output_name()}
    return out


# ---------------------------------------------------------------------------------------------- loading


@scenario
def net_load_path_str(lite, fixtures):
    net = lite.LiteNetwork()
    r = call(lambda: net.load(fx(fixtures, "resnet18_small.mge")))
    return {"returns": r, "inputs": net.get_all_input_name(), "outputs": net.get_all_output_name(),
            "model_bytes_set": net.model_bytes is not None}


@scenario
def net_load_pathlib(lite, fixtures):
    net = lite.LiteNetwork()
    r = call(lambda: net.load(pathlib.Path(fx(fixtures, "resnet18_small.mge"))))
    return {"returns": r, "inputs": net.get_all_input_name()}


@scenario
def net_load_open_file(lite, fixtures):
    net = lite.LiteNetwork()
    with open(fx(fixtures, "resnet18_small.mge"), "rb") as f:
        r = call(lambda: net.load(f))
    return {"returns": r, "inputs": net.get_all_input_name(),
            "output": array_obs(run_resnet(net, resnet_input(fixtures)))}


@scenario
def net_load_bytes(lite, fixtures):
    net = lite.LiteNetwork()
    with open(fx(fixtures, "resnet18_small.mge"), "rb") as f:
        data = f.read()
    return call(lambda: net.load(data), "file must be BufferedReader when open!!")


@scenario
def net_load_bytesio(lite, fixtures):
    import io as _io

    net = lite.LiteNetwork()
    with open(fx(fixtures, "resnet18_small.mge"), "rb") as f:
        data = _io.BytesIO(f.read())
    return call(lambda: net.load(data), "file must be BufferedReader when open!!")


@scenario
def net_load_text_file(lite, fixtures):
    net = lite.LiteNetwork()
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "m.txt")
        with open(p, "w") as f:
            f.write("hello")
        with open(p, "r") as f:
            return call(lambda: net.load(f), "file must be BufferedReader when open!!")


@scenario
def net_load_missing_file(lite, fixtures):
    net = lite.LiteNetwork()
    return call(lambda: net.load("/nonexistent_dir_for_lite_test/model.mge"), "No such file")


@scenario
def net_load_garbage(lite, fixtures):
    net = lite.LiteNetwork()
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "garbage.mge")
        with open(p, "wb") as f:
            f.write(bytes(range(256)) * 8)
        r = call(lambda: net.load(p), "invalid model format")
    return {"load": r, "get_io_tensor": call(lambda: net.get_io_tensor("data"),
                                             "get_io_tensor should be used after model loaded.")}


@scenario
def net_load_empty_file(lite, fixtures):
    net = lite.LiteNetwork()
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "empty.mge")
        open(p, "wb").close()
        return call(lambda: net.load(p), "m_refhold && size")


@scenario
def net_load_truncated(lite, fixtures):
    net = lite.LiteNetwork()
    with open(fx(fixtures, "resnet18_small.mge"), "rb") as f:
        data = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "trunc.mge")
        with open(p, "wb") as f:
            f.write(data[: len(data) // 2])
        return call(lambda: net.load(p), "m_offset + size <= m_size")


@scenario
def net_reload(lite, fixtures):
    net = resnet(lite, fixtures)
    a = run_resnet(net, resnet_input(fixtures))
    r = call(lambda: net.load(fx(fixtures, "resnet18_small.mge")))
    b = run_resnet(net, resnet_input(fixtures))
    return {"returns": r, "first": array_obs(a), "second": array_obs(b)}


@scenario
def net_reload_other_model(lite, fixtures):
    net = resnet(lite, fixtures)
    r = call(lambda: net.load(fx(fixtures, "two_in_two_out.mge")))
    return {"returns": r, "inputs": net.get_all_input_name(), "outputs": net.get_all_output_name(),
            "old_input": call(lambda: net.get_io_tensor("data"), "tensor name must be")}


# ---------------------------------------------------------------------------------------------- forward


@scenario
def net_forward_resnet(lite, fixtures):
    net = resnet(lite, fixtures)
    inp = net.get_io_tensor("data")
    r1 = call(lambda: inp.set_data_by_copy(resnet_input(fixtures)))
    r2 = call(lambda: net.forward())
    r3 = call(lambda: net.wait())
    out = net.get_io_tensor("logits")
    return {"returns": [r1, r2, r3], "output": tensor_obs(out), "values": array_obs(out.to_numpy())}


@scenario
def net_forward_two_in_two_out(lite, fixtures):
    data = ref(fixtures, "two_in_two_out")
    net = lite.LiteNetwork()
    net.load(fx(fixtures, "two_in_two_out.mge"))
    for n in net.get_all_input_name():
        net.get_io_tensor(n).set_data_by_copy(data["input:" + n])
    net.forward()
    net.wait()
    return {n: array_obs(net.get_io_tensor(n).to_numpy()) for n in net.get_all_output_name()}


@scenario
def net_forward_int_models(lite, fixtures):
    out = {}
    for model in ["int32_input", "uint8_input"]:
        data = ref(fixtures, model)
        net = lite.LiteNetwork()
        net.load(fx(fixtures, model + ".mge"))
        for n in net.get_all_input_name():
            net.get_io_tensor(n).set_data_by_copy(data["input:" + n])
        net.forward()
        net.wait()
        out[model] = {n: array_obs(net.get_io_tensor(n).to_numpy()) for n in net.get_all_output_name()}
    return out


@scenario
def net_forward_shufflenet(lite, fixtures):
    data = ref(fixtures, "shufflenet_v2")
    net = lite.LiteNetwork()
    net.load(fx(fixtures, "shufflenet_v2.mge"))
    net.get_io_tensor("data").set_data_by_copy(data["input:data"])
    net.forward()
    net.wait()
    out = net.get_io_tensor("Softmax").to_numpy()
    return {"output": array_obs(out), "top5": [int(i) for i in np.argsort(-out[0])[:5]]}


@scenario
def net_forward_twice(lite, fixtures):
    net = resnet(lite, fixtures)
    x = resnet_input(fixtures)
    a = run_resnet(net, x)
    b = run_resnet(net, x)
    return {"equal": bool(np.array_equal(a, b)), "values": array_obs(b)}


@scenario
def net_forward_twice_without_wait(lite, fixtures):
    net = resnet(lite, fixtures)
    net.get_io_tensor("data").set_data_by_copy(resnet_input(fixtures))
    r = [call(lambda: net.forward()), call(lambda: net.forward()), call(lambda: net.wait())]
    return {"returns": r, "values": array_obs(net.get_io_tensor("logits").to_numpy())}


@scenario
def net_forward_output_view_is_alias(lite, fixtures):
    net = resnet(lite, fixtures)
    x = resnet_input(fixtures)
    run_resnet(net, x)
    view = net.get_io_tensor("logits").get_data_by_share()
    first = view.copy()
    second = run_resnet(net, x * 2)
    return {"owndata": bool(view.flags["OWNDATA"]), "view_changed": not np.array_equal(first, view),
            "view_equals_new_output": bool(np.array_equal(view, second)), "view": array_obs(view)}


@scenario
def net_forward_shared_input_mutation(lite, fixtures):
    net = resnet(lite, fixtures)
    x = resnet_input(fixtures).copy()
    net.get_io_tensor("data").set_data_by_share(x)
    net.forward()
    net.wait()
    a = net.get_io_tensor("logits").to_numpy()
    x *= 3
    net.forward()
    net.wait()
    b = net.get_io_tensor("logits").to_numpy()
    return {"first": array_obs(a), "after_mutation": array_obs(b), "changed": not np.array_equal(a, b)}


@scenario
def net_forward_input_view_write(lite, fixtures):
    net = resnet(lite, fixtures)
    view = net.get_io_tensor("data").get_data_by_share()
    view[...] = resnet_input(fixtures)
    net.forward()
    net.wait()
    return {"view_shape": list(view.shape), "values": array_obs(net.get_io_tensor("logits").to_numpy())}


@scenario
def net_forward_output_write_overwritten(lite, fixtures):
    net = resnet(lite, fixtures)
    out_t = net.get_io_tensor("logits")
    r = call(lambda: out_t.set_data_by_copy([100.0] * 10))
    net.get_io_tensor("data").set_data_by_copy(resnet_input(fixtures))
    net.forward()
    net.wait()
    return {"write": r, "values": array_obs(net.get_io_tensor("logits").to_numpy())}


@scenario
def net_forward_input_set_by_copy_list(lite, fixtures):
    net = lite.LiteNetwork()
    net.load(fx(fixtures, "two_in_two_out.mge"))
    net.get_io_tensor("a").set_data_by_copy([float(i) for i in range(8)])
    net.get_io_tensor("b").set_data_by_copy([2.0] * 8)
    net.forward()
    net.wait()
    return {n: array_obs(net.get_io_tensor(n).to_numpy()) for n in net.get_all_output_name()}


@scenario
def net_reshape_batch2_by_copy(lite, fixtures):
    net = resnet(lite, fixtures)
    x2 = resnet_input(fixtures, 2)
    out2 = run_resnet(net, x2)
    single = [run_resnet(net, np.ascontiguousarray(x2[i : i + 1])) for i in range(2)]
    return {"input": tensor_obs(net.get_io_tensor("data")), "batch2": array_obs(out2),
            "rows_match_single": bool(np.allclose(out2, np.concatenate(single), rtol=1e-4, atol=1e-5)),
            "output_after_batch1": tensor_obs(net.get_io_tensor("logits"))}


@scenario
def net_reshape_batch2_by_layout(lite, fixtures):
    net = resnet(lite, fixtures)
    inp = net.get_io_tensor("data")
    inp.layout = [2, 3, 64, 64]
    inp.get_data_by_share()[...] = resnet_input(fixtures, 2)
    net.forward()
    net.wait()
    out = net.get_io_tensor("logits")
    return {"input": tensor_obs(inp), "output": tensor_obs(out), "values": array_obs(out.to_numpy())}


@scenario
def net_reshape_old_view_keeps_shape(lite, fixtures):
    net = resnet(lite, fixtures)
    run_resnet(net, resnet_input(fixtures))
    old_view = net.get_io_tensor("logits").get_data_by_share()
    run_resnet(net, resnet_input(fixtures, 2))
    return {"old_view_shape": list(old_view.shape), "new": layout_obs(net.get_io_tensor("logits").layout)}


@scenario
def net_reshape_back_and_forth(lite, fixtures):
    net = resnet(lite, fixtures)
    x = resnet_input(fixtures)
    a = run_resnet(net, x)
    run_resnet(net, resnet_input(fixtures, 3))
    b = run_resnet(net, x)
    return {"equal": bool(np.allclose(a, b, rtol=1e-5, atol=1e-6)), "shape": list(b.shape)}


@scenario
def net_forward_small_spatial(lite, fixtures):
    net = resnet(lite, fixtures)
    x = np.ascontiguousarray(resnet_input(fixtures)[:, :, :16, :16])
    r = call(lambda: run_resnet(net, x))
    return r


@scenario
def net_forward_tiny_spatial(lite, fixtures):
    net = resnet(lite, fixtures)
    x = np.ascontiguousarray(resnet_input(fixtures)[:, :, :2, :2])
    return call(lambda: run_resnet(net, x))


@scenario
def net_forward_3d_input(lite, fixtures):
    net = resnet(lite, fixtures)
    x = np.ascontiguousarray(resnet_input(fixtures)[0])
    return call(lambda: run_resnet(net, x), "convolution on 2D image")


@scenario
def net_forward_wrong_channels(lite, fixtures):
    net = resnet(lite, fixtures)
    x = np.zeros((1, 4, 64, 64), np.float32)
    return call(lambda: run_resnet(net, x))


@scenario
def net_forward_wrong_dtype_uint8(lite, fixtures):
    net = resnet(lite, fixtures)
    x = np.zeros((1, 3, 64, 64), np.uint8)
    return call(lambda: run_resnet(net, x), "dtype mismatch")


@scenario
def net_forward_wrong_dtype_int32(lite, fixtures):
    net = resnet(lite, fixtures)
    x = np.zeros((1, 3, 64, 64), np.int32)
    return call(lambda: run_resnet(net, x), "dtype mismatch")


@scenario
def net_forward_recovers_after_error(lite, fixtures):
    net = resnet(lite, fixtures)
    bad = call(lambda: run_resnet(net, np.zeros((1, 3, 64, 64), np.uint8)), "dtype mismatch")
    good = call(lambda: run_resnet(net, resnet_input(fixtures)))
    return {"bad_is_error": isinstance(bad, dict) and "raises" in bad, "good": good}


@scenario
def net_two_networks_in_threads(lite, fixtures):
    nets = [resnet(lite, fixtures) for _ in range(2)]
    xs = [resnet_input(fixtures), resnet_input(fixtures) * 0.5]
    results: list = [None, None]

    def work(i):
        results[i] = run_resnet(nets[i], xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [array_obs(r) for r in results]


# ---------------------------------------------------------------------------------------------- callbacks
# One callback registration per scenario (the original frees the previous trampoline on each registration).


def _io_dict_obs(ios: dict) -> list:
    return sorted(([io.name, type(io).__name__, int(io.is_host), int(io.io_type), type(t).__name__,
                    layout_obs(t.layout)] for io, t in ios.items()), key=lambda e: e[0])


@scenario
def cb_start(lite, fixtures):
    net = resnet(lite, fixtures)
    seen = []

    def start(ios):
        seen.append({"ios": _io_dict_obs(ios), "type": type(ios).__name__,
                     "input_values_sum": num(sum(float(t.to_numpy().astype(np.float64).sum()) for t in ios.values()))})
        return 0

    r = call(lambda: net.set_start_callback(start))
    x = resnet_input(fixtures)
    a = run_resnet(net, x)
    run_resnet(net, x)
    return {"returns": r, "calls": len(seen), "first": seen[0] if seen else None, "output": array_obs(a),
            "expected_input_sum": num(x.astype(np.float64).sum())}


@scenario
def cb_finish(lite, fixtures):
    net = resnet(lite, fixtures)
    seen = []

    def finish(ios):
        seen.append({"ios": _io_dict_obs(ios), "values": [array_obs(t.to_numpy()) for t in ios.values()]})
        return 0

    r = call(lambda: net.set_finish_callback(finish))
    a = run_resnet(net, resnet_input(fixtures))
    return {"returns": r, "calls": len(seen), "first": seen[0] if seen else None, "output": array_obs(a)}


@scenario
def cb_start_two_inputs(lite, fixtures):
    data = ref(fixtures, "two_in_two_out")
    net = lite.LiteNetwork()
    net.load(fx(fixtures, "two_in_two_out.mge"))
    seen = []

    def start(ios):
        seen.append(_io_dict_obs(ios))
        return 0

    net.set_start_callback(start)
    for n in net.get_all_input_name():
        net.get_io_tensor(n).set_data_by_copy(data["input:" + n])
    net.forward()
    net.wait()
    return {"calls": len(seen), "ios": seen[0] if seen else None}


@scenario
def cb_finish_with_io_config(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_output("logits", False)
    net = lite.LiteNetwork(None, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    seen = []

    def finish(ios):
        seen.append(_io_dict_obs(ios))
        return 0

    net.set_finish_callback(finish)
    run_resnet(net, resnet_input(fixtures))
    return {"calls": len(seen), "ios": seen[0] if seen else None}


@scenario
def cb_start_raises(lite, fixtures):
    net = resnet(lite, fixtures)
    calls = []

    def start(ios):
        calls.append(1)
        raise ValueError("boom in start callback")

    net.set_start_callback(start)
    r = call(lambda: run_resnet(net, resnet_input(fixtures)))
    return {"calls": len(calls), "forward": r}


@scenario
def cb_finish_raises(lite, fixtures):
    net = resnet(lite, fixtures)
    calls = []

    def finish(ios):
        calls.append(1)
        raise ValueError("boom in finish callback")

    net.set_finish_callback(finish)
    r = call(lambda: run_resnet(net, resnet_input(fixtures)))
    return {"calls": len(calls), "forward": r}


@scenario
def cb_finish_returns_none(lite, fixtures):
    net = resnet(lite, fixtures)
    calls = []
    net.set_finish_callback(lambda ios: calls.append(1))
    r = call(lambda: run_resnet(net, resnet_input(fixtures)))
    return {"calls": len(calls), "forward": r}


@scenario
def cb_async(lite, fixtures):
    net = resnet(lite, fixtures)
    calls = []
    main = threading.current_thread()

    def done():
        calls.append(threading.current_thread() is main)
        return 0

    r = call(lambda: net.async_with_callback(done))
    net.get_io_tensor("data").set_data_by_copy(resnet_input(fixtures))
    f = call(lambda: net.forward())
    w = call(lambda: net.wait())
    return {"returns": [r, f, w], "calls_after_wait": len(calls), "on_main_thread": calls,
            "output": array_obs(net.get_io_tensor("logits").to_numpy())}


@scenario
def cb_async_two_forwards(lite, fixtures):
    net = resnet(lite, fixtures)
    calls = []

    def done():
        calls.append(1)
        return 0

    net.async_with_callback(done)
    x = resnet_input(fixtures)
    net.get_io_tensor("data").set_data_by_copy(x)
    net.forward()
    net.wait()
    first = len(calls)
    net.get_io_tensor("data").set_data_by_copy(x * 2)
    net.forward()
    net.wait()
    return {"after_first_wait": first, "after_second_wait": len(calls),
            "output": array_obs(net.get_io_tensor("logits").to_numpy())}


@scenario
def cb_async_raises(lite, fixtures):
    net = resnet(lite, fixtures)
    calls = []

    def done():
        calls.append(1)
        raise ValueError("boom in async callback")

    net.async_with_callback(done)
    net.get_io_tensor("data").set_data_by_copy(resnet_input(fixtures))
    f = call(lambda: net.forward())
    w = call(lambda: net.wait())
    return {"forward": f, "wait": w, "called": len(calls) > 0,
            "output": array_obs(net.get_io_tensor("logits").to_numpy())}


# ---------------------------------------------------------------------------------------------- discrete input


def _discrete_net(lite, fixtures, n=3):
    c = lite.LiteConfig()
    c.discrete_input_name = b"data"
    io = lite.LiteNetworkIO()
    io.add_input(lite.LiteIO("data", layout=lite.LiteLayout([n, 3, 64, 64])))
    net = lite.LiteNetwork(c, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    return net


@scenario
def net_discrete_input(lite, fixtures):
    net = _discrete_net(lite, fixtures)
    xs = resnet_input(fixtures, 3)
    parts = []
    for i in range(3):
        t = net.get_discrete_tensor("data", i)
        parts.append(tensor_obs(t))
        t.set_data_by_copy(np.ascontiguousarray(xs[i : i + 1]))
    net.forward()
    net.wait()
    out = net.get_io_tensor("logits").to_numpy()
    plain_net = resnet(lite, fixtures)
    ref_out = run_resnet(plain_net, xs)
    return {"parts": parts, "output": array_obs(out),
            "matches_batched": bool(np.allclose(out, ref_out, rtol=1e-4, atol=1e-5))}


@scenario
def net_discrete_input_tensor(lite, fixtures):
    net = _discrete_net(lite, fixtures)
    return call(lambda: tensor_obs(net.get_io_tensor("data")))


@scenario
def net_discrete_index_out_of_range(lite, fixtures):
    net = _discrete_net(lite, fixtures)
    return call(lambda: net.get_discrete_tensor("data", 3), "n_idx should be less than 3")


@scenario
def net_discrete_wrong_phase(lite, fixtures):
    net = _discrete_net(lite, fixtures)
    return call(lambda: net.get_discrete_tensor("data", 0, lite.LiteTensorPhase.LITE_OUTPUT),
                "tensor name must be data input tensor name.")


@scenario
def net_discrete_on_normal_network(lite, fixtures):
    net = resnet(lite, fixtures)
    return call(lambda: net.get_discrete_tensor("data", 0), "tensor name must be data input tensor name.")


@scenario
def net_discrete_unknown_name(lite, fixtures):
    net = _discrete_net(lite, fixtures)
    return call(lambda: net.get_discrete_tensor("nope", 0), "tensor name must be")


# ---------------------------------------------------------------------------------------------- IO config


@scenario
def net_io_config_input_layout(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_input(lite.LiteIO("data", layout=lite.LiteLayout([2, 3, 64, 64])))
    net = lite.LiteNetwork(None, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    inp = net.get_io_tensor("data")
    before = tensor_obs(inp)
    inp.get_data_by_share()[...] = resnet_input(fixtures, 2)
    net.forward()
    net.wait()
    return {"input_after_load": before, "output": array_obs(net.get_io_tensor("logits").to_numpy())}


@scenario
def net_io_config_input_layout_overridden(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_input(lite.LiteIO("data", layout=lite.LiteLayout([2, 3, 64, 64])))
    net = lite.LiteNetwork(None, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    out = run_resnet(net, resnet_input(fixtures))
    return array_obs(out)


@scenario
def net_io_config_output_wrong_layout(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_output(lite.LiteIO("logits", layout=lite.LiteLayout([5, 7])))
    net = lite.LiteNetwork(None, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    out = call(lambda: run_resnet(net, resnet_input(fixtures)))
    return {"outputs": net.get_all_output_name(), "output": out}


@scenario
def net_io_config_unknown_names(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_input("nope_in")
    io.add_output("nope_out")
    net = lite.LiteNetwork(None, io)
    r = call(lambda: net.load(fx(fixtures, "resnet18_small.mge")))
    return {"load": r, "inputs": call(lambda: net.get_all_input_name()),
            "outputs": call(lambda: net.get_all_output_name())}


@scenario
def net_io_config_output_subset(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_output("prod_out")
    net = lite.LiteNetwork(None, io)
    net.load(fx(fixtures, "two_in_two_out.mge"))
    data = ref(fixtures, "two_in_two_out")
    for n in net.get_all_input_name():
        net.get_io_tensor(n).set_data_by_copy(data["input:" + n])
    net.forward()
    net.wait()
    return {"outputs": net.get_all_output_name(),
            "prod_out": array_obs(net.get_io_tensor("prod_out").to_numpy()),
            "sum_out": call(lambda: array_obs(net.get_io_tensor("sum_out").to_numpy()), "tensor name must be")}


@scenario
def net_io_shape_only_output(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_output("logits", io_type=lite.LiteIOType.LITE_IO_SHAPE)
    net = lite.LiteNetwork(None, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    net.get_io_tensor("data").set_data_by_copy(resnet_input(fixtures))
    r = [call(lambda: net.forward()), call(lambda: net.wait())]
    return {"returns": r, "output": tensor_obs(net.get_io_tensor("logits"))}


@scenario
def net_io_not_host(lite, fixtures):
    io = lite.LiteNetworkIO()
    io.add_input("data", is_host=False)
    io.add_output("logits", is_host=False)
    net = lite.LiteNetwork(None, io)
    net.load(fx(fixtures, "resnet18_small.mge"))
    out = call(lambda: run_resnet(net, resnet_input(fixtures)))
    return {"output": out, "input": tensor_obs(net.get_io_tensor("data"))}


# ---------------------------------------------------------------------------------------------- options


def _option_net(lite, fixtures, **options):
    c = lite.LiteConfig()
    for k, v in options.items():
        setattr(c.options, k, v)
    net = lite.LiteNetwork(c)
    net.load(fx(fixtures, "resnet18_small.mge"))
    return net


def _harmless_option_scenario(label: str, options: dict) -> None:
    def fn(lite, fixtures):
        net = _option_net(lite, fixtures, **options)
        x = resnet_input(fixtures)
        a = run_resnet(net, x)
        b = run_resnet(net, x * 2)
        return {"first": array_obs(a), "second": array_obs(b)}

    fn.__name__ = "net_option_" + label
    scenario(fn)


for _label, _opts in [
    ("weight_preprocess", {"weight_preprocess": 1}),
    ("fuse_preprocess", {"fuse_preprocess": 1}),
    ("var_sanity_check_off", {"var_sanity_check_first_run": 0}),
    ("force_dynamic_alloc", {"force_dynamic_alloc": 1}),
    ("force_output_dynamic_alloc", {"force_output_dynamic_alloc": 1}),
    ("no_profiling_on_shape_change", {"no_profiling_on_shape_change": 1}),
    ("graph_opt_level_0", {"graph_opt_level": 0}),
    ("async_exec_level_0", {"async_exec_level": 0}),
    ("record_level_1", {"comp_node_seq_record_level": 1}),
    ("record_level_2_valid", {"comp_node_seq_record_level": 2, "var_sanity_check_first_run": 0}),
    ("enable_nchw44", {"enable_nchw44": 1}),
]:
    _harmless_option_scenario(_label, _opts)


@scenario
def net_option_record_level_1_shape_change(lite, fixtures):
    net = _option_net(lite, fixtures, comp_node_seq_record_level=1)
    run_resnet(net, resnet_input(fixtures))
    return call(lambda: run_resnet(net, resnet_input(fixtures, 2)))


@scenario
def net_option_record_level_2_defaults(lite, fixtures):
    return call(lambda: _option_net(lite, fixtures, comp_node_seq_record_level=2) and None,
                "both fake_next_exec and var_sanity_check_first_run must be false when comp_node_seq_record_level is 2")


@scenario
def net_option_const_shape_change(lite, fixtures):
    net = _option_net(lite, fixtures, const_shape=1)
    first = call(lambda: run_resnet(net, resnet_input(fixtures)))
    second = call(lambda: run_resnet(net, resnet_input(fixtures, 2)), "disallowed shape change")
    return {"first": first, "batch2": second}


@scenario
def net_option_fake_next_exec(lite, fixtures):
    net = _option_net(lite, fixtures, fake_next_exec=1)
    x = resnet_input(fixtures)
    first = run_resnet(net, x)
    second = run_resnet(net, x)
    return {"first_shape": list(first.shape), "second": array_obs(second)}


@scenario
def net_option_user_memory_unbound(lite, fixtures):
    net = _option_net(lite, fixtures, force_output_use_user_specified_memory=1)
    return call(lambda: run_resnet(net, resnet_input(fixtures)), "dev_tensor_valid")


@scenario
def net_option_user_memory_bound(lite, fixtures):
    net = _option_net(lite, fixtures, force_output_use_user_specified_memory=1)
    user = np.zeros((1, 10), np.float32)
    net.get_io_tensor("logits").set_data_by_share(user)
    net.get_io_tensor("data").set_data_by_copy(resnet_input(fixtures))
    r = [call(lambda: net.forward()), call(lambda: net.wait())]
    return {"returns": r, "user_buffer": array_obs(user),
            "tensor_is_user_buffer": ptr(net.get_io_tensor("logits")) == user.ctypes.data}


@scenario
def net_option_jit_level_1(lite, fixtures):
    return call(lambda: _option_net(lite, fixtures, jit_level=1) and None, "No compiler support")


@scenario
def net_option_graph_opt_level_3(lite, fixtures):
    return call(lambda: _option_net(lite, fixtures, graph_opt_level=3) and None, "No compiler support")


# ---------------------------------------------------------------------------------------------- config at load


@scenario
def net_config_has_compression(lite, fixtures):
    c = lite.LiteConfig()
    c.has_compression = True
    net = lite.LiteNetwork(c)
    return call(lambda: net.load(fx(fixtures, "resnet18_small.mge")), "Unexpected compression method")


@scenario
def net_config_aes_on_plain_model(lite, fixtures):
    c = lite.LiteConfig()
    c.bare_model_cryption_name = "AES_default"
    net = lite.LiteNetwork(c)
    return call(lambda: net.load(fx(fixtures, "resnet18_small.mge")), "invalid model format")


@scenario
def net_config_unknown_cryption_name(lite, fixtures):
    c = lite.LiteConfig()
    c.bare_model_cryption_name = "NOPE"
    net = lite.LiteNetwork(c)
    return call(lambda: net.load(fx(fixtures, "resnet18_small.mge")), "The decryption method NOPE is not registed yet.")


@scenario
def net_config_auto_optimize_inference(lite, fixtures):
    c = lite.LiteConfig()
    c.auto_optimize_inference = True
    net = lite.LiteNetwork(c)
    net.load(fx(fixtures, "resnet18_small.mge"))
    return {"threads": net.threads_number, "output": array_obs(run_resnet(net, resnet_input(fixtures)))}


@scenario
def net_config_cuda_without_gpu(lite, fixtures):
    net = lite.LiteNetwork(lite.LiteConfig(lite.LiteDeviceType.LITE_CUDA))
    return call(lambda: net.load(fx(fixtures, "resnet18_small.mge")), "out of valid range")


@scenario
def net_config_device_default(lite, fixtures):
    net = lite.LiteNetwork(lite.LiteConfig(lite.LiteDeviceType.LITE_DEVICE_DEFAULT))
    r = call(lambda: net.load(fx(fixtures, "resnet18_small.mge")))
    return {"load": r, "output": call(lambda: run_resnet(net, resnet_input(fixtures)))}


# ---------------------------------------------------------------------------------------------- debug outputs


@scenario
def net_profile_performance(lite, fixtures):
    import json as _json

    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "profile.json")
        net = resnet(lite, fixtures)
        net.enable_profile_performance(p)
        out = array_obs(run_resnet(net, resnet_input(fixtures)))
        del net
        exists = os.path.exists(p)
        keys = None
        if exists:
            with open(p) as f:
                data = _json.load(f)
            keys = {"top": sorted(data), "profiler": sorted(data.get("profiler", {}))}
        return {"exists": exists, "keys": keys, "output": out}


@scenario
def net_io_txt_dump(lite, fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "io.txt")
        net = resnet(lite, fixtures)
        net.io_txt_dump(p)
        out = array_obs(run_resnet(net, resnet_input(fixtures)))
        del net
        size = os.path.getsize(p) if os.path.exists(p) else -1
        with open(p) as f:
            first = f.readline()
        return {"nonempty": size > 0, "first_line_starts_with_var": first.startswith("var"), "output": out}


@scenario
def net_io_bin_dump(lite, fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        net = resnet(lite, fixtures)
        net.io_bin_dump(tmp + "/")
        out = array_obs(run_resnet(net, resnet_input(fixtures)))
        del net
        files = sorted(os.listdir(tmp))
        return {"has_files": len(files) > 0, "names_are_6_hex": all(len(n) == 6 and
                                                                     all(c in "0123456789abcdef" for c in n)
                                                                     for n in files), "output": out}


@scenario
def net_io_bin_dump_missing_dir(lite, fixtures):
    net = resnet(lite, fixtures)
    net.io_bin_dump("/nonexistent_dir_for_lite_test/")
    return call(lambda: run_resnet(net, resnet_input(fixtures)), "failed to open")


# ============================================================================================ 9. get_model_io_info


@scenario
def model_io_info_resnet(lite, fixtures):
    info = lite.get_model_io_info(fx(fixtures, "resnet18_small.mge"))
    return {"type": type(info).__name__, "inputs": [io_obs(i) for i in info.inputs],
            "outputs": [io_obs(o) for o in info.outputs]}


@scenario
def model_io_info_two_in_two_out(lite, fixtures):
    info = lite.get_model_io_info(fx(fixtures, "two_in_two_out.mge"))
    return {"inputs": [io_obs(i) for i in info.inputs], "outputs": [io_obs(o) for o in info.outputs]}


@scenario
def model_io_info_int_models(lite, fixtures):
    out = {}
    for m in ["int32_input", "uint8_input", "shufflenet_v2"]:
        info = lite.get_model_io_info(fx(fixtures, m + ".mge"))
        out[m] = {"inputs": [io_obs(i) for i in info.inputs], "outputs": [io_obs(o) for o in info.outputs]}
    return out


@scenario
def model_io_info_with_config(lite, fixtures):
    info = lite.get_model_io_info(fx(fixtures, "resnet18_small.mge"), lite.LiteConfig())
    return [io_obs(i) for i in info.inputs]


@scenario
def model_io_info_pathlib(lite, fixtures):
    return call(lambda: lite.get_model_io_info(pathlib.Path(fx(fixtures, "resnet18_small.mge"))), "encode")


@scenario
def model_io_info_missing(lite, fixtures):
    return call(lambda: lite.get_model_io_info("/nonexist_for_lite_test.mge"), "failed to open")


@scenario
def model_io_info_garbage(lite, fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "garbage.mge")
        with open(p, "wb") as f:
            f.write(bytes(range(256)) * 8)
        return call(lambda: lite.get_model_io_info(p), "invalid model format")


# ============================================================================================ 10. LiteGlobal


@scenario
def global_register_decryption_duplicate(lite, fixtures):
    def xor(in_arr, key_arr, out_arr):
        if out_arr is None:
            return len(in_arr)
        out_arr[:] = in_arr ^ key_arr[0]
        return len(in_arr)

    f = lite.decryption_func(xor)
    first = call(lambda: lite.LiteGlobal.register_decryption_and_key("api_scenario_xor", f, [7]))
    second = call(lambda: lite.LiteGlobal.register_decryption_and_key("api_scenario_xor", f, [7]),
                  "The decryption method api_scenario_xor is already registered.")
    return {"first": first, "second": second}


@scenario
def global_register_builtin_name(lite, fixtures):
    f = lite.decryption_func(lambda i, k, o: len(i))
    return call(lambda: lite.LiteGlobal.register_decryption_and_key("AES_default", f, [1]),
                "The decryption method AES_default is already registered.")


@scenario
def global_decryption_func_model(lite, fixtures):
    def xor(in_arr, key_arr, out_arr):
        if out_arr is None:
            return len(in_arr)
        out_arr[:] = in_arr ^ key_arr[0]
        return len(in_arr)

    lite.LiteGlobal.register_decryption_and_key("api_scenario_xor_model", lite.decryption_func(xor), [0x5A])
    with open(fx(fixtures, "resnet18_small.mge"), "rb") as f:
        data = np.frombuffer(f.read(), np.uint8) ^ 0x5A
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "xor.mge")
        data.tofile(p)
        c = lite.LiteConfig()
        c.bare_model_cryption_name = "api_scenario_xor_model"
        net = lite.LiteNetwork(c)
        r = call(lambda: net.load(p), "invalid model format")
    out = call(lambda: run_resnet(net, resnet_input(fixtures))) if r is None else None
    return {"load": r, "output": out}


@scenario
def global_update_decryption_key(lite, fixtures):
    G = lite.LiteGlobal
    return {"aes": call(lambda: G.update_decryption_key("AES_default", list(range(32)))),
            "rc4": call(lambda: G.update_decryption_key("RC4_default", list(range(16)))),
            "unknown": call(lambda: G.update_decryption_key("nope", [1, 2, 3]),
                            "The decryption method nope is not registered.")}


@scenario
def global_set_loader_lib_path_bad(lite, fixtures):
    return call(lambda: lite.LiteGlobal.set_loader_lib_path("/nonexistent_dir_for_lite_test/libx.so"),
                "failed to open c opr lib")


@scenario
def global_persistent_cache(lite, fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        r1 = call(lambda: lite.LiteGlobal.set_persistent_cache(os.path.join(tmp, "cache.bin")))
        out_path = os.path.join(tmp, "dump.bin")
        r2 = call(lambda: lite.LiteGlobal.dump_persistent_cache(out_path))
        exists = os.path.exists(out_path)
        content = open(out_path, "rb").read().hex() if exists else None
        return {"set": r1, "dump": r2, "exists": exists, "content": content}


@scenario
def global_persistent_cache_bad_dir(lite, fixtures):
    return call(lambda: lite.LiteGlobal.set_persistent_cache("/nonexistent_dir_for_lite_test/cache.bin"),
                "failed to open")


@scenario
def global_dump_persistent_cache_bad_dir(lite, fixtures):
    return call(lambda: lite.LiteGlobal.dump_persistent_cache("/nonexistent_dir_for_lite_test/cache.bin"),
                "failed to open")


@scenario
def global_tensorrt_cache(lite, fixtures):
    with tempfile.TemporaryDirectory() as tmp:
        return {"set": call(lambda: lite.LiteGlobal.set_tensorrt_cache(os.path.join(tmp, "trt.cache"))),
                "dump": call(lambda: lite.LiteGlobal.dump_tensorrt_cache())}


@scenario
def global_device_count(lite, fixtures):
    D = lite.LiteDeviceType
    G = lite.LiteGlobal
    cpu = G.get_device_count(D.LITE_CPU)
    return {"cpu_is_cpu_count": cpu == os.cpu_count(), "cpu_type": type(cpu).__name__,
            "default_is_cpu_count": G.get_device_count(D.LITE_DEVICE_DEFAULT) == os.cpu_count(),
            "cuda": G.get_device_count(D.LITE_CUDA)}


@scenario
def global_device_count_npu(lite, fixtures):
    return call(lambda: lite.LiteGlobal.get_device_count(lite.LiteDeviceType.LITE_NPU),
                "lite unsupported compnode type: enum value: 4.")


@scenario
def global_try_coalesce_all_free_memory(lite, fixtures):
    return call(lambda: lite.LiteGlobal.try_coalesce_all_free_memory())


@scenario
def global_memory_pair_argument_checks(lite, fixtures):
    G = lite.LiteGlobal
    D = lite.LiteDeviceType
    return {"register": call(lambda: G.register_memory_pair(1, 2, 16, D.LITE_CPU),
                             "clear memory pair only accept c_void_p type."),
            "clear": call(lambda: G.clear_memory_pair(1, 2, D.LITE_CPU),
                          "clear memory pair only accept c_void_p type."),
            "lookup": call(lambda: G.lookup_physic_ptr(1, D.LITE_CPU), "lookup physic ptr only accept c_void_p type.")}


@scenario
def global_memory_pair_cpu(lite, fixtures):
    G = lite.LiteGlobal
    D = lite.LiteDeviceType
    buf = (ctypes.c_uint8 * 16)()
    vir = ctypes.c_void_p(ctypes.addressof(buf))
    phy = ctypes.c_void_p(ctypes.addressof(buf))
    return {"register": call(lambda: G.register_memory_pair(vir, phy, 16, D.LITE_CPU), "not implement"),
            "clear": call(lambda: G.clear_memory_pair(vir, phy, D.LITE_CPU), "not implement"),
            "lookup": call(lambda: G.lookup_physic_ptr(vir, D.LITE_CPU), "not implement")}


# ============================================================================================ 11. TensorBatchCollector


def _tbc(lite, shape=None, dtype="float32", **kw):
    return lite.TensorBatchCollector([4, 2, 3] if shape is None else shape, dtype,
                                     lite.LiteDeviceType.LITE_CPU, **kw)


def _sample(i, dtype="float32"):
    return (np.arange(6).reshape(2, 3) + 10 * i).astype(dtype)


@scenario
def tbc_default_device_cuda(lite, fixtures):
    return call(lambda: lite.TensorBatchCollector([4, 8]), "out of valid range")


@scenario
def tbc_attributes(lite, fixtures):
    bc = _tbc(lite)
    return {"shape": bc.shape, "dtype": [bc.dtype, type(bc.dtype).__name__], "dev_type": plain(bc.dev_type),
            "dev_id": bc.dev_id, "is_pinned_host": bc.is_pinned_host, "free_list": bc._free_list,
            "mutex": type(bc._mutex).__name__, "tensor": tensor_obs(bc._tensor)}


@scenario
def tbc_dtype_variants(lite, fixtures):
    D = lite.LiteDataType
    out = {}
    for label, d in [("str_int8", "int8"), ("enum_int", D.LITE_INT), ("np_uint8", np.uint8), ("default", None)]:
        if d is None:
            bc = lite.TensorBatchCollector([2, 3], device_type=lite.LiteDeviceType.LITE_CPU)
        else:
            bc = lite.TensorBatchCollector([2, 3], d, lite.LiteDeviceType.LITE_CPU)
        out[label] = [bc.dtype, layout_obs(bc.get().layout)]
    return out


@scenario
def tbc_collect(lite, fixtures):
    bc = _tbc(lite)
    ids = [bc.collect(_sample(i)) for i in range(4)]
    full = caught_warnings(lambda: bc.collect(_sample(9)))
    return {"ids": ids, "full": full, "values": array_obs(bc.to_numpy()), "free_list": bc._free_list}


@scenario
def tbc_collect_wrong_shape(lite, fixtures):
    bc = _tbc(lite)
    return call(lambda: bc.collect(np.zeros((3, 2), np.float32)))


@scenario
def tbc_collect_wrong_shape_free_list(lite, fixtures):
    bc = _tbc(lite)
    call(lambda: bc.collect(np.zeros((3, 2), np.float32)))
    return bc._free_list


@scenario
def tbc_collect_wrong_dtype(lite, fixtures):
    bc = _tbc(lite)
    return call(lambda: bc.collect(np.zeros((2, 3), np.int32)))


@scenario
def tbc_collect_unsupported_dtype(lite, fixtures):
    bc = _tbc(lite)
    return call(lambda: bc.collect(np.zeros((2, 3), np.float64)))


@scenario
def tbc_collect_tensor(lite, fixtures):
    bc = _tbc(lite)
    t = lite.LiteTensor(lite.LiteLayout([2, 3]))
    t.set_data_by_copy(_sample(5))
    i = bc.collect(t)
    wrong = call(lambda: bc.collect(lite.LiteTensor(lite.LiteLayout([3, 2]))))
    return {"id": i, "row": array_obs(bc.to_numpy()[i]),
            "wrong_shape": wrong}


@scenario
def tbc_collect_id(lite, fixtures):
    bc = _tbc(lite)
    r = caught_warnings(lambda: bc.collect_id(_sample(1), 2))
    again = caught_warnings(lambda: bc.collect_id(_sample(7), 2))
    nxt = bc.collect(_sample(3))
    return {"first": r, "again": again, "row2": array_obs(bc.to_numpy()[2]), "free_list": bc._free_list,
            "next_collect": nxt}


@scenario
def tbc_collect_id_out_of_range(lite, fixtures):
    bc = _tbc(lite)
    r = caught_warnings(lambda: bc.collect_id(_sample(1), 5))
    return {"exception": r["result"].get("raises") if isinstance(r["result"], dict) else r["result"]}


@scenario
def tbc_collect_by_ctypes(lite, fixtures):
    bc = _tbc(lite, [2, 2, 3])
    bufs = [(ctypes.c_float * 6)(*[float(i + 10 * k) for i in range(6)]) for k in range(3)]
    r0 = caught_warnings(lambda: bc.collect_by_ctypes(bufs[0], 24))
    r1 = caught_warnings(lambda: bc.collect_by_ctypes(bufs[1], 24))
    full = caught_warnings(lambda: bc.collect_by_ctypes(bufs[2], 24))
    return {"first": r0, "second": r1, "full": full, "values": array_obs(bc.to_numpy())}


@scenario
def tbc_collect_by_ctypes_wrong_length(lite, fixtures):
    bc = _tbc(lite, [2, 2, 3])
    buf = (ctypes.c_float * 6)()
    return call(lambda: bc.collect_by_ctypes(buf, 12),
                "when input data is ctypes, the length of input data or layout must set")


@scenario
def tbc_free(lite, fixtures):
    bc = _tbc(lite)
    bc.collect(_sample(0))
    bc.collect(_sample(1))
    r = caught_warnings(lambda: bc.free([0]))
    after_free = list(bc._free_list)
    bad = caught_warnings(lambda: bc.free([3]))
    nxt = bc.collect(_sample(2))
    return {"free": r, "after_free": after_free, "free_uncollected": bad, "free_list": bc._free_list,
            "next_collect": nxt}


@scenario
def tbc_free_out_of_range(lite, fixtures):
    bc = _tbc(lite)
    r = caught_warnings(lambda: bc.free([7]))
    return {"free": r, "free_list": bc._free_list}


@scenario
def tbc_get_tensor_at(lite, fixtures):
    bc = _tbc(lite)
    bc.collect(_sample(0))
    t = bc.get_tensor_at(0)
    free_slot = caught_warnings(lambda: tensor_obs(bc.get_tensor_at(1)))
    return {"tensor": tensor_obs(t), "values": array_obs(t.to_numpy()), "free_slot": free_slot,
            "out_of_range": call(lambda: bc.get_tensor_at(4), "the idx specific the tensor is out of range.")}


@scenario
def tbc_get(lite, fixtures):
    bc = _tbc(lite)
    bc.collect(_sample(0))
    t = bc.get()
    return {"type": type(t).__name__, "tensor": tensor_obs(t), "same": t is bc.get(),
            "to_numpy": array_obs(bc.to_numpy()[0])}


@scenario
def tbc_tensor_argument(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([4, 2, 3], "int32"))
    bc = lite.TensorBatchCollector([4, 2, 3], tensor=t)
    return {"dtype": bc.dtype, "uses_tensor": bc.get() is t, "dev_type": plain(bc.dev_type),
            "collect": bc.collect(_sample(1, "int32"))}


@scenario
def tbc_tensor_argument_device_attributes(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([4, 2, 3], "int32"), device_id=0)
    bc = lite.TensorBatchCollector([4, 2, 3], tensor=t)
    return {"device_type": call(lambda: bc.device_type), "device_id": call(lambda: bc.device_id),
            "dev_id": bc.dev_id}


@scenario
def tbc_device_attributes_without_tensor(lite, fixtures):
    bc = _tbc(lite)
    return {"device_type": call(lambda: bc.device_type), "device_id": call(lambda: bc.device_id)}


@scenario
def tbc_tensor_argument_wrong_shape(lite, fixtures):
    t = lite.LiteTensor(lite.LiteLayout([4, 2, 2]))
    return call(lambda: lite.TensorBatchCollector([4, 2, 3], tensor=t),
                "The tensor set to TensorBatchCollector is not right.")


@scenario
def tbc_tuple_shape(lite, fixtures):
    def go():
        bc = lite.TensorBatchCollector((4, 2, 3), "float32", lite.LiteDeviceType.LITE_CPU)
        return bc.collect(_sample(0))

    return call(go)


@scenario
def tbc_feed_network(lite, fixtures):
    bc = lite.TensorBatchCollector([2, 3, 64, 64], "float32", lite.LiteDeviceType.LITE_CPU)
    xs = resnet_input(fixtures, 2)
    for i in range(2):
        bc.collect(np.ascontiguousarray(xs[i]))
    net = resnet(lite, fixtures)
    net.get_io_tensor("data").copy_from(bc.get())
    net.forward()
    net.wait()
    return array_obs(net.get_io_tensor("logits").to_numpy())
