"""megenginelite on Ray: Ray Serve serving over the KServe v2 protocol (``megenginelite serve``) and Ray Data
batch inference (``Predictor``). Imported only when asked for: ``import megenginelite`` does not import Ray."""

from __future__ import annotations

import logging

from .data import Predictor

__all__ = ["Predictor", "init_ray"]


def init_ray(address: str | None, num_cpus: int | None) -> None:
    """Start a new local Ray instance (``address`` None: ``num_cpus`` CPUs, no dashboard; never a cluster that
    happens to run here, which stopping would then shut down) or connect to the cluster at ``address``; Ray's
    INFO log lines are kept off the command's output (warnings still show)."""
    import ray

    local = address is None
    ray.init(address=address or "local", num_cpus=num_cpus if local else None, include_dashboard=False if local else None,
             log_to_driver=False, configure_logging=False)
    for name in ("ray", "ray.serve", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
