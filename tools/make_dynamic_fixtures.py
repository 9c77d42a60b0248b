#!/usr/bin/env python3
"""Generate the fixtures of values whose size depends on the data (``tests/fixtures/dynamic/``).

Run this with a Python that has the *real* MegEngine 1.13.0 (and with it the real ``megenginelite``); from the
repository root::

    "$(../shared/tools/real-megengine)" tools/make_dynamic_fixtures.py

Each fixture is a small graph in which a data-dependent length (CondTake's survivors, NMS keep lists, a TopK whose
k is computed from such a length) flows through other operators, traced with
``trace(symbolic=True, capture_as_const=True)`` and dumped. In symbolic tracing MegEngine's Python wrappers
(``F.topk``, ``F.vision.nms``, ``F.argsort``) assert on ``ndim``, which is unknown for such values, so the graphs
call the builtin operators through ``apply`` exactly as those wrappers do (the dumped graph is the same).

Every fixture is run by the real ``megenginelite`` on several inputs (many survivors, few, none) and the outputs
are written to ``<name>.npz`` (keys ``case<i>:input:<name>`` / ``case<i>:output:<name>``); ``manifest.json``
lists the cases and ``empty_shapes``, the output shapes with nothing left. Where the real library fails (with no box left its NMS path reduces over an empty tensor:
"empty input is not allowed for reduce mode: max", or here an empty TopK input), the case records the error; we
return empty outputs of the ``empty_shapes`` instead (0 rows). The tests only read the committed files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "dynamic"

# The references must come from the *real* megenginelite, never from this repository's package.
sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != ROOT]


def fixtures():
    import megengine.functional as F
    from megengine.core._imperative_rt.core2 import apply
    from megengine.core.ops import builtin

    def topk_desc(row, k):
        """The k largest of a (1, n) row, sorted (F.topk(descending=True) without its ndim assertion)."""
        return apply(builtin.TopK(mode=builtin.TopK.Mode.VALUE_IDX_SORTED), row, -k)

    def nms(boxes, scores, thresh, max_output):
        """F.vision.nms without its ndim assertions: argsort, NMSKeep, keep[:count]."""
        _, order = apply(builtin.Argsort(order=builtin.Argsort.Order.DESCENDING), scores.reshape(1, -1))
        order = order.reshape(-1)
        indices, count = apply(builtin.NMSKeep(thresh, max_output), boxes[order].reshape(1, -1, 4))
        return order[indices[0][:count[0]]]

    rs = np.random.RandomState(20261204)
    n = 24
    feat = rs.normal(0, 1, (1, 4, 16, 16)).astype(np.float32)
    corner = rs.uniform(0, 44, (n, 2))
    boxes = np.concatenate([corner, corner + rs.uniform(4, 20, (n, 2))], 1).astype(np.float32)
    scores = rs.uniform(0, 1, n).astype(np.float32)

    def chain(feat, scores, boxes):
        """CondTake -> Reshape -> arithmetic -> TopK (computed k) -> NMSKeep -> gather -> RoIAlign."""
        kept, idx = F.cond_take(scores > 0.3, scores)
        b = boxes[idx].reshape(-1, 4) * 1.5 + 0.5
        k = F.minimum(kept.shape[0], 10)
        top, order = topk_desc(kept.reshape(1, -1), k)
        top = top.reshape(-1)
        b = b[order.reshape(-1)].reshape(-1, 4)
        keep = nms(b, top, 0.4, 6)
        b = b[keep]
        rois = F.concat([F.zeros((b.shape[0], 1)), b], axis=1)
        pooled = F.vision.roi_align(feat, rois, (2, 2), mode="average", spatial_scale=0.25, sample_points=2,
                                    aligned=True)
        return pooled, top[keep], b

    inputs = [("feat", feat), ("scores", scores), ("boxes", boxes)]
    yield ("chain_condtake_topk_nms_roialign", chain, inputs, ["pooled", "score", "box"],
           [{"scores": scores}, {"scores": scores * 0.34}, {"scores": scores * 0.0}],
           {"pooled": [0, 4, 2, 2], "score": [0], "box": [0, 4]})



def run_lite(path: Path, inputs: dict, outputs: list[str]) -> dict:
    import megenginelite as lite

    net = lite.LiteNetwork()
    net.load(str(path))
    for name, value in inputs.items():
        net.get_io_tensor(name).set_data_by_copy(value)
    net.forward()
    net.wait()
    return {name: net.get_io_tensor(name).to_numpy().copy() for name in outputs}


def main() -> None:
    import megengine as mge
    from megengine.jit import trace

    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, fn, inputs, output_names, cases, empty_shapes in fixtures():
        traced = trace(fn, symbolic=True, capture_as_const=True)
        traced(*[mge.tensor(v) for _, v in inputs])
        path = OUT / f"{name}.mge"
        traced.dump(str(path), arg_names=[n for n, _ in inputs], output_names=output_names)
        arrays, entries = {}, []
        for i, change in enumerate(cases):
            feed = {n: change.get(n, v) for n, v in inputs}
            for n, v in feed.items():
                arrays[f"case{i}:input:{n}"] = v
            try:
                got = run_lite(path, feed, output_names)
            except Exception as exc:  # the real library fails on some inputs (no box left)
                entries.append({"error": str(exc).splitlines()[0][:200]})
                continue
            for n, v in got.items():
                arrays[f"case{i}:output:{n}"] = v
            entries.append({"shapes": {n: list(v.shape) for n, v in got.items()}})
        np.savez(OUT / f"{name}.npz", **arrays)
        manifest[name] = {"file": f"{name}.mge", "inputs": [n for n, _ in inputs], "outputs": output_names,
                          "cases": entries, "empty_shapes": empty_shapes, "note": (fn.__doc__ or "").strip()}
        print(name, [e.get("shapes", e.get("error")) for e in entries])
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
