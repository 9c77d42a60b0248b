"""megenginelite: MegEngine Lite's Python API, re-implemented in Python on top of ONNX Runtime.

``from megenginelite import *`` gives the same public names as the original package (but, unlike it, does not
also leak ctypes, numpy, os or our submodules into the caller's namespace).
"""

from . import base, global_setting, network, struct, tensor, utils
from .base import *  # noqa: F401,F403
from .base import __version__  # noqa: F401
from .global_setting import *  # noqa: F401,F403
from .network import *  # noqa: F401,F403
from .struct import *  # noqa: F401,F403
from .tensor import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403

__all__ = sorted({name for module in (base, global_setting, network, struct, tensor, utils) for name in module.__all__})
