"""megenginelite on Ray: Ray Serve serving over the KServe v2 protocol (``megenginelite serve``) and Ray Data
batch inference (``Predictor``). Imported only when asked for: ``import megenginelite`` does not import Ray."""

from .data import Predictor

__all__ = ["Predictor"]
