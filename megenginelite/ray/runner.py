"""One ``LiteNetwork`` shared by many requests: their inputs checked against the model, stacked along dim 0 into
one forward and the outputs split back. Used by the Ray Serve replicas and the Ray Data predictor alike; it
needs no Ray itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import RequestError
from ..network import LiteNetwork
from ..struct import LiteConfig, LiteDeviceType

Tensors = dict[str, np.ndarray]


@dataclass(frozen=True)
class TensorSpec:
    """An input or output as the model declares it; ``shape[0]`` is the batch dim when the runner batches."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]


class ModelRunner:
    """A loaded model behind a lock: ``check`` a request's inputs, ``run_many`` requests in as few forwards as
    their shapes allow.

    ``max_batch > 1`` asks to stack requests along dim 0; it is granted (``self.batching``) only when the model
    passes a check at load time: one forward of two stacked samples equals the two forwards of one sample each.
    A model whose dim 0 is not a batch (a reshape that folds it, a fixed-size output) is then served one request
    per forward, with its exact shapes. Stacked rows run in chunks of a power of two up to ``max_batch`` (13 rows:
    8 + 4 + 1), all compiled at load time: every new dim 0 costs a compilation (0.06-0.4 s for ShuffleNetV2) and a
    session (about 50 MB), so a bounded set of them is built once instead of one per batch size met in service.
    """

    def __init__(self, model: str | bytes, *, device: str = "cpu", threads: int = 1, max_batch: int = 8):
        device_type = LiteDeviceType.LITE_CUDA if device == "cuda" else LiteDeviceType.LITE_CPU
        self._network = LiteNetwork(LiteConfig(device_type=device_type))
        self._network.threads_number = threads
        self._network.load(model)
        self._lock = threading.Lock()
        self.inputs = [self._spec(name) for name in self._network.get_all_input_name()]
        self.output_names = list(self._network.get_all_output_name())
        single = self.forward(self._sample(0))
        self.outputs = [TensorSpec(n, single[n].dtype, single[n].shape) for n in self.output_names]
        self.batching = max_batch > 1 and self._stacks_along_dim0(single)
        self.chunk = 1 << (max_batch.bit_length() - 1)  # the largest power of two <= max_batch
        size = 4
        while self.batching and size <= self.chunk:  # 1 and 2 ran in the check
            self.forward({name: np.concatenate([arr] * size) for name, arr in self._sample(0).items()})
            size *= 2

    def _spec(self, name: str) -> TensorSpec:
        layout = self._network.get_io_tensor(name).layout
        return TensorSpec(name, np.dtype(layout.dtype), tuple(int(d) for d in layout.shapes))

    def _sample(self, seed: int) -> Tensors:
        """Inputs of the model's own shapes: uniform [0, 1) floats, zeros for other dtypes (which may be indices)."""
        rng = np.random.RandomState(seed)
        return {s.name: rng.uniform(0, 1, s.shape).astype(s.dtype) if s.dtype.kind == "f"
                else np.zeros(s.shape, s.dtype) for s in self.inputs}

    def _stacks_along_dim0(self, first: Tensors) -> bool:
        if any(not s.shape for s in self.inputs + self.outputs):
            return False
        a, b = self._sample(0), self._sample(1)
        try:
            both = self.forward({n: np.concatenate([a[n], b[n]]) for n in a})
        except Exception:  # the model refuses the doubled dim 0: it is no batch dim
            return False
        second = self.forward(b)
        for name in self.output_names:
            want = np.concatenate([first[name], second[name]])
            if both[name].shape != want.shape:
                return False
            scale = max(1.0, float(np.abs(want).max())) if want.size and want.dtype.kind == "f" else 1.0
            if not np.allclose(both[name], want, rtol=1e-3, atol=1e-5 * scale):
                return False
        return True

    def shape(self, spec: TensorSpec) -> list[int]:
        """The shape clients see: -1 for the batch dim when requests are batched."""
        return [-1, *spec.shape[1:]] if self.batching else list(spec.shape)

    def forward(self, inputs: Tensors) -> Tensors:
        """One forward of the network on ``inputs`` (thread-safe: one run at a time)."""
        with self._lock:
            for name, arr in inputs.items():
                self._network.get_io_tensor(name).set_data_by_copy(np.ascontiguousarray(arr))
            self._network.forward()
            self._network.wait()
            return {name: self._network.get_io_tensor(name).to_numpy() for name in self.output_names}

    def check(self, inputs: Tensors) -> int:
        """Raise ``RequestError`` unless ``inputs`` are exactly the model's inputs with its dtypes and shapes (dim 0
        free when batching, the same for every input); returns that dim 0."""
        names = [s.name for s in self.inputs]
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise RequestError(f"unknown input {unknown[0]!r} (the model's inputs: {', '.join(names)})")
        missing = [n for n in names if n not in inputs]
        if missing:
            raise RequestError(f"missing input {missing[0]!r} (the model's inputs: {', '.join(names)})")
        batch = None
        for spec in self.inputs:
            arr = inputs[spec.name]
            if arr.dtype != spec.dtype:
                raise RequestError(f"input {spec.name!r}: datatype {arr.dtype} does not match the model's "
                                   f"{spec.dtype}")
            want = self.shape(spec)
            if len(arr.shape) != len(want) or any(w not in (-1, d) for w, d in zip(want, arr.shape)):
                raise RequestError(f"input {spec.name!r}: shape {list(arr.shape)} does not match the model's {want}")
            if self.batching:
                if arr.shape[0] == 0:
                    raise RequestError(f"input {spec.name!r}: empty batch (dim 0 is 0)")
                if batch is not None and arr.shape[0] != batch:
                    raise RequestError(f"input {spec.name!r}: batch {arr.shape[0]} differs from the other inputs' "
                                       f"{batch}")
                batch = arr.shape[0]
        return batch if batch is not None else 1

    def run_many(self, requests: Sequence[Tensors]) -> list[Tensors]:
        """The outputs of each request (checked before): requests whose inputs have the same shapes share their
        forwards when batching (power-of-two chunks of rows), the outputs split back along dim 0 in request
        order."""
        if not self.batching:
            return [self.forward(r) for r in requests]
        groups: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(tuple(request[s.name].shape[1:] for s in self.inputs), []).append(i)
        results: list[Tensors] = [{} for _ in requests]
        for members in groups.values():
            sizes = [requests[i][self.inputs[0].name].shape[0] for i in members]
            rows = {s.name: np.concatenate([requests[i][s.name] for i in members]) for s in self.inputs}
            parts, start = [], 0
            while start < sum(sizes):
                size = min(self.chunk, 1 << ((sum(sizes) - start).bit_length() - 1))
                parts.append(self.forward({name: arr[start:start + size] for name, arr in rows.items()}))
                start += size
            cuts = np.cumsum(sizes)[:-1]
            for name in self.output_names:
                arr = np.concatenate([part[name] for part in parts])
                if arr.shape[:1] != (sum(sizes),):
                    raise RuntimeError(f"output {name!r} has shape {list(arr.shape)} for a batch of {sum(sizes)}")
                for i, part in zip(members, np.split(arr, cuts)):
                    results[i][name] = part
        return results
