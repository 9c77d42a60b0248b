"""Batch inference with Ray Data: ``Predictor`` for ``Dataset.map_batches`` and ``run_folder`` (the
``megenginelite run-dataset`` command) over a folder of ``.npy`` files."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import RequestError
from .runner import ModelRunner


class Predictor:
    """A callable class for ``ds.map_batches(Predictor, fn_constructor_args=(model,), concurrency=N,
    batch_size=B)``: each Ray actor loads the model once and maps numpy batches to numpy batches.

    A batch holds one column per model input, each row one sample without the batch dim (rows of a
    ``(1, 3, 224, 224)`` input are ``(3, 224, 224)``); the result has one column per output, row i the output of
    row i, and the columns named in ``keep`` passed through (e.g. the ids or paths that say which row is which).
    Rows go through the network stacked along dim 0, at most ``max_batch`` per forward (``ModelRunner``); a
    model that cannot be batched runs row by row. Rows of the wrong shape or dtype raise ``RequestError``.
    """

    def __init__(self, model: str | bytes, *, threads: int = 1, device: str = "cpu", max_batch: int = 16,
                 keep: Sequence[str] = ()):
        self.runner = ModelRunner(model, device=device, threads=threads, max_batch=max_batch)
        self.keep = tuple(keep)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {s.name: np.asarray(batch[s.name]) for s in self.runner.inputs if s.name in batch}
        rows = len(next(iter(inputs.values()))) if inputs else 0
        requests = [{name: arr[i:i + 1] for name, arr in inputs.items()} for i in range(rows)]
        for request in requests:
            self.runner.check(request)
        outputs = self.runner.run_many(requests)
        result = {name: np.concatenate([out[name] for out in outputs]) for name in self.runner.output_names}
        result.update({column: batch[column] for column in self.keep})
        return result


def _load(batch: dict[str, np.ndarray], input_name: str) -> dict[str, np.ndarray]:
    """Read the batch's ``.npy`` files (one model input each, batch dim 1): the rows of ``input_name``."""
    arrays = []
    for path in batch["path"]:
        arr = np.load(path, allow_pickle=False)
        if arr.ndim == 0 or arr.shape[0] != 1:
            raise RequestError(f"{path}: shape {list(arr.shape)}, expected one sample (dim 0 of 1)")
        arrays.append(arr[0])
    return {"path": batch["path"], input_name: np.stack(arrays)}


def run_folder(model: bytes, input_dir: str, output_dir: str, *, batch_size: int = 16, concurrency: int = 1,
               threads: int = 1, device: str = "cpu",
               progress: Callable[[int, int], None] = lambda done, total: None) -> list[str]:
    """Run ``model`` over every ``*.npy`` file of ``input_dir`` (each one input of the model's shape) on Ray
    Data; write ``output_dir/<stem>.npz`` (one array per output, as a forward on that file gives) and return the
    paths written. Ray must be initialized."""
    import ray

    runner = ModelRunner(model, device=device, threads=threads, max_batch=1)  # for the names
    if len(runner.inputs) != 1:
        raise RequestError(f"run-dataset takes single-input models; this one has {len(runner.inputs)} inputs")
    input_name = runner.inputs[0].name
    files = sorted(str(p) for p in Path(input_dir).glob("*.npy"))
    if not files:
        raise RequestError(f"{input_dir}: no .npy files")
    os.makedirs(output_dir, exist_ok=True)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller's ``progress`` draws one
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # importing ray.data configured it anew
    dataset = (ray.data.from_items([{"path": f} for f in files])
               .map_batches(_load, fn_kwargs={"input_name": input_name}, batch_size=batch_size)
               .map_batches(Predictor, fn_constructor_args=(model,), fn_constructor_kwargs={
                   "threads": threads, "device": device, "max_batch": batch_size, "keep": ("path",)},
                   compute=ray.data.ActorPoolStrategy(size=concurrency), batch_size=batch_size, num_cpus=threads))
    written = []
    progress(0, len(files))
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for i, path in enumerate(batch["path"]):
            target = os.path.join(output_dir, Path(str(path)).stem + ".npz")
            np.savez(target, **{name: batch[name][i:i + 1] for name in runner.output_names})
            written.append(target)
        progress(len(written), len(files))
    return written
