"""Enums, LiteLayout, LiteOptions, LiteConfig, LiteExtraConfig, LiteIO, LiteNetworkIO and the base module."""

import copy
import ctypes
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from megenginelite import base
from megenginelite.errors import LiteArgumentError, LiteError, UnsupportedDTypeError
from megenginelite.struct import (
    MAX_DIM,
    LiteAlgoSelectStrategy,
    LiteBackend,
    LiteConfig,
    LiteDataType,
    LiteDeviceType,
    LiteExtraConfig,
    LiteIO,
    LiteIOType,
    LiteLayout,
    LiteLogLevel,
    LiteNetworkIO,
    LiteOptions,
    LiteTensorPhase,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# --------------------------------------------------------------------------------------------------- enums


def test_enum_values_match_the_original():
    assert {m.name: m.value for m in LiteBackend} == {"LITE_DEFAULT": 0}
    assert {m.name: m.value for m in LiteDeviceType} == {
        "LITE_CPU": 0,
        "LITE_CUDA": 1,
        "LITE_ATLAS": 3,
        "LITE_NPU": 4,
        "LITE_CAMBRICON": 5,
        "LITE_DEVICE_DEFAULT": 7,
    }
    assert {m.name: m.value for m in LiteDataType} == {
        "LITE_FLOAT": 0,
        "LITE_HALF": 1,
        "LITE_INT": 2,
        "LITE_INT16": 3,
        "LITE_INT8": 4,
        "LITE_UINT8": 5,
        "LITE_UINT16": 6,
    }
    assert {m.name: m.value for m in LiteTensorPhase} == {"LITE_IO": 0, "LITE_INPUT": 1, "LITE_OUTPUT": 2}
    assert {m.name: m.value for m in LiteIOType} == {"LITE_IO_VALUE": 0, "LITE_IO_SHAPE": 1}
    assert {m.name: m.value for m in LiteAlgoSelectStrategy} == {
        "LITE_ALGO_HEURISTIC": 1,
        "LITE_ALGO_PROFILE": 2,
        "LITE_ALGO_REPRODUCIBLE": 4,
        "LITE_ALGO_OPTIMIZED": 8,
    }
    assert {m.name: m.value for m in LiteLogLevel} == {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}


def test_enums_are_int_enums_and_algo_flags_combine():
    assert LiteDeviceType.LITE_CUDA == 1
    assert isinstance(LiteDataType.LITE_INT, int)
    combined = LiteAlgoSelectStrategy.LITE_ALGO_PROFILE | LiteAlgoSelectStrategy.LITE_ALGO_OPTIMIZED
    assert combined == 10


# --------------------------------------------------------------------------------------------------- LiteLayout


def test_empty_layout():
    lay = LiteLayout()
    assert lay.ndim == 0
    assert lay.shapes == []
    assert lay.data_type == LiteDataType.LITE_FLOAT
    assert lay.dtype is np.float32
    for falsy in ([], (), None):
        assert LiteLayout(falsy).ndim == 0


def test_layout_shape_from_any_iterable():
    assert LiteLayout((2, 3)).shapes == [2, 3]
    assert LiteLayout(range(1, 4)).shapes == [1, 2, 3]
    assert LiteLayout(np.array([4, 5])).shapes == [4, 5]
    lay = LiteLayout([np.int64(7), 2])
    assert lay.shapes == [7, 2]
    assert all(type(d) is int for d in lay.shapes)


def test_layout_max_dim():
    assert MAX_DIM == 7
    assert LiteLayout([1] * 7).ndim == 7
    with pytest.raises(AssertionError, match="Layout max dim is 7."):
        LiteLayout([1] * 8)
    lay = LiteLayout([2])
    with pytest.raises(AssertionError, match="Layout max dim is 7."):
        lay.shapes = [1] * 8


def test_layout_non_integer_dim_is_type_error():
    with pytest.raises(TypeError):
        LiteLayout([2.0])


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (None, LiteDataType.LITE_FLOAT),
        (0, LiteDataType.LITE_FLOAT),
        (LiteDataType.LITE_UINT8, LiteDataType.LITE_UINT8),
        ("int32", LiteDataType.LITE_INT),
        ("float32", LiteDataType.LITE_FLOAT),
        ("uint8", LiteDataType.LITE_UINT8),
        ("int8", LiteDataType.LITE_INT8),
        ("int16", LiteDataType.LITE_INT16),
        ("uint16", LiteDataType.LITE_UINT16),
        ("float16", LiteDataType.LITE_HALF),
        (np.float32, LiteDataType.LITE_FLOAT),
        (np.float16, LiteDataType.LITE_HALF),
        (np.int8, LiteDataType.LITE_INT8),
        (np.uint16, LiteDataType.LITE_UINT16),
        (np.dtype("int16"), LiteDataType.LITE_INT16),
        (np.dtype("float16"), LiteDataType.LITE_HALF),
        (np.dtype("uint32"), LiteDataType.LITE_INT),  # the original maps c_uint to INT
    ],
)
def test_layout_dtype_normalisation(dtype, expected):
    lay = LiteLayout([1], dtype)
    assert lay.data_type == expected
    assert type(lay.data_type) is int


@pytest.mark.parametrize("dtype", ["float64", np.float64, np.int64, np.dtype("float64"), np.dtype("int64"), "uint32", float])
def test_layout_unsupported_numpy_dtype_is_key_error(dtype):
    with pytest.raises(KeyError) as info:
        LiteLayout([1], dtype)
    assert isinstance(info.value, UnsupportedDTypeError)
    assert "not a supported lite data type" in str(info.value)


@pytest.mark.parametrize("dtype", [2, object(), 1.5])
def test_layout_unknown_dtype_object_is_runtime_error(dtype):
    with pytest.raises(RuntimeError, match="unkonw data type"):
        LiteLayout([1], dtype)


def test_layout_unknown_dtype_name_is_type_error():
    with pytest.raises(TypeError):
        LiteLayout([1], "not_a_dtype")


def test_layout_dtype_property_and_setters():
    lay = LiteLayout([2, 3])
    lay.data_type = LiteDataType.LITE_INT
    assert type(lay.data_type) is int and lay.data_type == 2
    assert lay.dtype is np.int32
    lay.ndim = 3
    assert lay.shapes == [2, 3, 0]
    lay.shapes = (4,)
    assert lay.ndim == 1 and lay.shapes == [4]
    with pytest.raises(TypeError):
        lay.data_type = 1.5
    with pytest.raises(TypeError):
        lay.ndim = "2"


def test_layout_shapes_returns_a_copy():
    lay = LiteLayout([2, 3])
    lay.shapes.append(9)
    assert lay.shapes == [2, 3]


def test_layout_repr():
    lay = LiteLayout([1, 3, 224, 224])
    assert repr(lay) == "{'shapes': [1, 3, 224, 224], 'ndim': 4, 'data_type': <class 'numpy.float32'>}"
    assert repr(LiteLayout([2], "float16")) == "{'shapes': [2], 'ndim': 1, 'data_type': <class 'numpy.float16'>}"


def test_layout_equality_is_identity():
    a, b = LiteLayout([1, 2]), LiteLayout([1, 2])
    assert a == a
    assert not (a == b)
    assert a != b


def test_layout_accepts_extra_attributes():
    lay = LiteLayout([1])
    lay.note = "x"
    assert lay.note == "x"


# --------------------------------------------------------------------------------------------------- LiteOptions

OPTION_DEFAULTS = {
    "weight_preprocess": 0,
    "fuse_preprocess": 0,
    "fake_next_exec": 0,
    "var_sanity_check_first_run": 1,
    "const_shape": 0,
    "force_dynamic_alloc": 0,
    "force_output_dynamic_alloc": 0,
    "force_output_use_user_specified_memory": 0,
    "no_profiling_on_shape_change": 0,
    "jit_level": 0,
    "comp_node_seq_record_level": 0,
    "graph_opt_level": 2,
    "async_exec_level": 1,
    "enable_nchw44": 0,
    "enable_nchw44_dot": 0,
    "enable_nchw88": 0,
    "enable_nhwcd4": 0,
    "enable_nchw4": 0,
    "enable_nchw32": 0,
    "enable_nchw64": 0,
}


def test_options_defaults():
    opt = LiteOptions()
    for name, value in OPTION_DEFAULTS.items():
        assert getattr(opt, name) == value, name
        assert type(getattr(opt, name)) is int


def test_options_fields_take_ints_only():
    opt = LiteOptions()
    opt.weight_preprocess = True
    assert opt.weight_preprocess == 1 and type(opt.weight_preprocess) is int
    opt.jit_level = np.int64(2)
    assert opt.jit_level == 2
    with pytest.raises(TypeError):
        opt.const_shape = 1.5
    with pytest.raises(TypeError):
        opt.graph_opt_level = "3"


def test_options_unknown_attribute_is_plain_attribute():
    opt = LiteOptions()
    opt.record_level = 1  # the docstring's name; not a field
    assert opt.record_level == 1
    assert opt.comp_node_seq_record_level == 0


def test_options_repr_lists_first_13_fields():
    text = repr(LiteOptions())
    assert text == (
        "{'weight_preprocess': False, 'fuse_preprocess': False, 'fake_next_exec': False, "
        "'var_sanity_check_first_run': True, 'const_shape': False, 'force_dynamic_alloc': False, "
        "'force_output_dynamic_alloc': False, 'force_output_use_user_specified_memory': False, "
        "'no_profiling_on_shape_change': False, 'jit_level': 0, 'comp_node_seq_record_level': 0, "
        "'graph_opt_level': 2, 'async_exec_level': 1}"
    )
    assert "enable_nchw44" not in text


def test_options_instances_are_independent():
    a, b = LiteOptions(), LiteOptions()
    a.const_shape = 1
    assert b.const_shape == 0


# --------------------------------------------------------------------------------------------------- LiteConfig


def test_config_defaults():
    cfg = LiteConfig()
    assert cfg.has_compression == 0
    assert cfg.device_id == 0
    assert cfg.device_type == LiteDeviceType.LITE_CPU
    assert cfg.backend == LiteBackend.LITE_DEFAULT
    assert cfg.bare_model_cryption_name == ""
    assert isinstance(cfg.options, LiteOptions)
    assert cfg.options.graph_opt_level == 2
    assert cfg.auto_optimize_inference == 0
    assert cfg.discrete_input_name == b""
    assert cfg.use_loader_dynamic_param == 0


def test_config_device_type_reads_back_as_int():
    cfg = LiteConfig(LiteDeviceType.LITE_CUDA)
    assert cfg.device_type == 1 and type(cfg.device_type) is int
    cfg.device_type = LiteDeviceType.LITE_DEVICE_DEFAULT
    assert cfg.device_type == 7
    with pytest.raises(TypeError):
        cfg.device_id = "1"


def test_config_option_argument_is_copied():
    opt = LiteOptions()
    opt.weight_preprocess = 1
    cfg = LiteConfig(option=opt)
    assert cfg.options.weight_preprocess == 1
    assert cfg.options is not opt
    opt.const_shape = 1
    assert cfg.options.const_shape == 0
    cfg.options.const_shape = 1  # in-place edits of the config's own options stick
    assert cfg.options.const_shape == 1


def test_config_options_must_be_lite_options():
    cfg = LiteConfig()
    with pytest.raises(TypeError, match="expected LiteOptions instance, got str"):
        cfg.options = "x"


def test_config_bare_model_cryption_name():
    cfg = LiteConfig()
    cfg.bare_model_cryption_name = "AES_default"
    assert cfg.bare_model_cryption_name == "AES_default"
    cfg.bare_model_cryption_name = b"RC4_default"
    assert cfg.bare_model_cryption_name == "RC4_default"
    with pytest.raises(AssertionError, match="name should be str or bytes type."):
        cfg.bare_model_cryption_name = 5


def test_config_discrete_input_name_is_bytes():
    cfg = LiteConfig()
    cfg.discrete_input_name = b"data"
    assert cfg.discrete_input_name == b"data"
    cfg.discrete_input_name = "data2"
    assert cfg.discrete_input_name == b"data2"
    with pytest.raises(TypeError):
        cfg.discrete_input_name = 3


def test_config_repr_renders_device_id_as_int():
    cfg = LiteConfig()
    text = repr(cfg)
    assert text.startswith("{'has_compression': False, 'device_id': 0, 'device_type': <LiteDeviceType.LITE_CPU: 0>")
    assert "'backend': <LiteBackend.LITE_DEFAULT: 0>" in text
    assert "'bare_model_cryption_name': ''" in text
    assert "'options': {'weight_preprocess': False" in text
    assert "'discrete_input_name': b''" in text
    for device_id in (2, 8, 100):  # the original raised ValueError here
        cfg.device_id = device_id
        assert f"'device_id': {device_id}," in repr(cfg)


def test_extra_config():
    assert LiteExtraConfig().disable_configure_by_model_info == 0
    cfg = LiteExtraConfig(True)
    assert cfg.disable_configure_by_model_info == 1
    assert repr(cfg) == "{'disable_configure_by_model_info': True}"


# --------------------------------------------------------------------------------------------------- LiteIO


def test_io_defaults_and_repr():
    io = LiteIO("data")
    assert io.name == "data"
    assert io.is_host == 1
    assert io.io_type == LiteIOType.LITE_IO_VALUE
    assert io.config_layout.ndim == 0
    assert repr(io) == (
        "{'name': 'data', 'is_host': True, 'io_type': <LiteIOType.LITE_IO_VALUE: 0>, "
        "'config_layout': {'shapes': [], 'ndim': 0, 'data_type': <class 'numpy.float32'>}}"
    )


def test_io_arguments():
    lay = LiteLayout([2, 4, 4])
    io = LiteIO(b"data2", is_host=False, io_type=LiteIOType.LITE_IO_SHAPE, layout=lay)
    assert io.name == "data2"
    assert io.is_host == 0
    assert io.io_type == LiteIOType.LITE_IO_SHAPE
    assert io.config_layout.shapes == [2, 4, 4]
    # the layout is copied in, as a ctypes structure field would be
    assert io.config_layout is not lay
    lay.shapes = [9]
    assert io.config_layout.shapes == [2, 4, 4]


def test_io_name_setter_and_type_check():
    io = LiteIO("a")
    io.name = b"b"
    assert io.name == "b"
    io.name = "c"
    assert io.name == "c"
    with pytest.raises(AssertionError, match="name should be str or bytes type."):
        io.name = 1
    with pytest.raises(AssertionError, match="name should be str or bytes type."):
        LiteIO(5)  # segfaulted on repr in the original


def test_io_hash_is_name_hash_and_eq_is_identity():
    a, b = LiteIO("data"), LiteIO("data")
    assert hash(a) == hash("data") == hash(b)
    assert a != b
    assert {a: 1}[a] == 1


def test_network_io_from_list_items():
    nio = LiteNetworkIO(
        inputs=[["data", False], ["shape_in", True, LiteIOType.LITE_IO_SHAPE]],
        outputs=[LiteIO("out"), ("out2", True, LiteIOType.LITE_IO_VALUE, LiteLayout([1, 10]))],
    )
    assert [i.name for i in nio.inputs] == ["data", "shape_in"]
    assert nio.inputs[0].is_host == 0
    assert nio.inputs[1].io_type == LiteIOType.LITE_IO_SHAPE
    assert [o.name for o in nio.outputs] == ["out", "out2"]
    assert nio.outputs[1].config_layout.shapes == [1, 10]


@pytest.mark.parametrize("bad", [["data"], [1], [{"name": "data"}]])
def test_network_io_rejects_other_items(bad):
    with pytest.raises(AssertionError, match="must be list of the LiteIO member or the LiteIO"):
        LiteNetworkIO(inputs=bad)
    with pytest.raises(AssertionError, match="must be list of the LiteIO member or the LiteIO"):
        LiteNetworkIO(outputs=bad)


def test_network_io_add_input_output_and_repr():
    nio = LiteNetworkIO()
    assert nio.inputs == [] and nio.outputs == []
    io = LiteIO("data", is_host=False)
    nio.add_input(io)
    nio.add_input("second", False, LiteIOType.LITE_IO_SHAPE, LiteLayout([3]))
    nio.add_output("out", layout=LiteLayout([1, 1000]))
    assert nio.inputs[0] is io
    assert nio.inputs[1].name == "second" and nio.inputs[1].is_host == 0
    assert nio.inputs[1].config_layout.shapes == [3]
    assert nio.outputs[0].config_layout.shapes == [1, 1000]
    text = repr(nio)
    assert text.startswith("{'inputs': [{'name': 'data', 'is_host': False")
    assert "'outputs': [{'name': 'out'" in text


def test_struct_objects_copy():
    opt = LiteOptions()
    opt.const_shape = 1
    assert copy.copy(opt).const_shape == 1
    lay = LiteLayout([3, 4], "int8")
    dup = copy.copy(lay)
    dup.shapes = [1]
    assert lay.shapes == [3, 4] and dup.data_type == LiteDataType.LITE_INT8


# --------------------------------------------------------------------------------------------------- base


def test_version():
    assert base.version == "1.13.0"
    assert base.__version__ == base.version
    assert base.MAX_DIM == 7


def test_ctype_to_lite_dtypes():
    table = base.ctype_to_lite_dtypes
    assert table[ctypes.c_int] == LiteDataType.LITE_INT
    assert table[ctypes.c_uint] == LiteDataType.LITE_INT
    assert table[ctypes.c_float] == LiteDataType.LITE_FLOAT
    assert table[ctypes.c_ubyte] == LiteDataType.LITE_UINT8
    assert table[ctypes.c_byte] == LiteDataType.LITE_INT8
    assert table[ctypes.c_short] == LiteDataType.LITE_INT16
    assert table[ctypes.c_ushort] == LiteDataType.LITE_UINT16
    assert len(table) == 7


@pytest.fixture
def restore_log_level():
    logger = logging.getLogger("megenginelite")
    old = logger.level
    yield
    logger.setLevel(old)


def test_log_level_default_is_error():
    code = "from megenginelite.base import get_log_level; print(int(get_log_level()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == str(int(LiteLogLevel.ERROR))  # the original's default


def test_log_level_round_trip(restore_log_level):
    for level in LiteLogLevel:
        base.set_log_level(level)
        assert base.get_log_level() is level
    base.set_log_level(1)
    assert base.get_log_level() is LiteLogLevel.INFO
    assert logging.getLogger("megenginelite").level == logging.INFO
    base.set_log_level(LiteLogLevel.WARN)
    assert logging.getLogger("megenginelite").level == logging.WARNING


def test_log_level_errors(restore_log_level):
    with pytest.raises(RuntimeError, match="unkonw loglevel") as info:
        base.set_log_level(99)
    assert isinstance(info.value, LiteError)
    with pytest.raises(RuntimeError, match="unkonw loglevel"):
        base.set_log_level(-1)
    with pytest.raises(ctypes.ArgumentError) as info:
        base.set_log_level("DEBUG")
    assert isinstance(info.value, LiteArgumentError)
    base.set_log_level(LiteLogLevel.DEBUG)
    with pytest.raises(RuntimeError):
        base.set_log_level(4)
    assert base.get_log_level() == LiteLogLevel.DEBUG  # a rejected level changes nothing
