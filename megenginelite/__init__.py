"""megenginelite: MegEngine Lite's Python API, re-implemented in Python on top of ONNX Runtime.

``from megenginelite import *`` gives the same public names as the original package.
"""

from .base import *  # noqa: F401,F403
from .base import __version__  # noqa: F401
from .network import *  # noqa: F401,F403
from .struct import *  # noqa: F401,F403
from .tensor import *  # noqa: F401,F403

from .utils import *  # noqa: F401,F403
