"""The one load pipeline: from a model file's bytes to the plain model and the settings a packed model carries.

``LiteNetwork.load`` used to detect the container, unpack or decrypt it and change the network's device, threads,
inplace and TensorRT settings as a side effect.  :func:`open_model` does the container step once and returns those
settings as a value; the caller decides what to apply.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from . import crypto
from .errors import ModelFormatError
from .format import ModelRecord, detect_format, read_model
from .runtime.onnx_model import is_onnx_file
from .struct import LiteConfig, LiteNetworkIO

__all__ = ["open_model", "OpenedModel", "PackedSettings"]


@dataclass
class PackedSettings:
    """What a packed model's info asks of the network loading it (the original's "separate" settings)."""

    #: the network's config and IO with the info applied (copies); None when the info configures nothing
    #: (no valid info, or ``LiteExtraConfig.disable_configure_by_model_info``)
    config: LiteConfig | None = None
    network_io: LiteNetworkIO | None = None
    device_id: int | None = None
    #: only values > 1 take effect, as in the original
    number_threads: int | None = None
    enable_inplace: bool = False
    use_tensorrt: bool = False


@dataclass
class OpenedModel:
    """A model file opened: its plain bytes, its record (None for ONNX) and a packed model's settings."""

    plain: bytes
    record: ModelRecord | None
    settings: PackedSettings | None


def open_model(data: bytes, source: str, config: LiteConfig, network_io: LiteNetworkIO,
               disable_configure: bool = False) -> OpenedModel:
    """Detect the container once, unpack a packed model (keeping its settings) or decrypt a bare one with
    ``config.bare_model_cryption_name``, then read the plain model (ONNX is left to ONNX Runtime).

    ``config`` and ``network_io`` are not changed: a packed model's configuration comes back in
    ``settings.config`` / ``settings.network_io``.
    """
    settings = None
    if detect_format(data) == "packed_model":
        from . import packed  # imported when a packed model comes, not with the package
        unpacked = packed.unpack(data, configure_valid=not disable_configure)
        info = unpacked.info
        if info is not None and info.valid:
            settings = PackedSettings()
            if not disable_configure:
                settings.config, settings.network_io = copy.deepcopy(config), copy.deepcopy(network_io)
                info.apply(settings.config, settings.network_io)
            separate = info.separate_config()
            settings.device_id = separate.get("device_id")
            if separate.get("number_threads", 0) > 1:
                settings.number_threads = separate["number_threads"]
            settings.enable_inplace = bool(separate.get("enable_inplace_model"))
            settings.use_tensorrt = bool(separate.get("use_tensorrt"))
        data = unpacked.model
    elif config.bare_model_cryption_name:
        data = crypto.decrypt(config.bare_model_cryption_name, data)
    effective = settings.config if settings is not None and settings.config is not None else config
    if effective.has_compression:
        raise ModelFormatError(f"{source}: Unexpected compression method (compressed models are not supported)")
    record = None if is_onnx_file(data, source) else read_model(data, source)
    return OpenedModel(data, record, settings)
