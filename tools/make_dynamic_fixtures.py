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
lists the cases with their output shapes. Where the real library fails (with no box left its NMS path reduces over an empty tensor:
"empty input is not allowed for reduce mode: max", or here an empty TopK input), the case records the error and
the shapes of the empty outputs (0 rows) we return instead. The tests only read the committed files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fixtures.paths import FIXTURES
from fixtures.real_megengine import F, apply, builtin, mge, require, trace

OUT = FIXTURES / "dynamic"


def fixtures():
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
           [({"scores": scores}, None), ({"scores": scores * 0.34}, None),
            ({"scores": scores * 0.0}, {"pooled": [0, 4, 2, 2], "score": [0], "box": [0, 4]})])



    weight = mge.tensor(rs.normal(0, 0.5, (4, 3)).astype(np.float32))
    image = rs.normal(0, 1, (1, 2, 8, 8)).astype(np.float32)

    def ops(x, y, image):
        """A CondTake of a CondTake, then the operator families on run-time-sized values: Concat, Reshape,
        broadcasting, MatrixMul, Dimshuffle, TypeCvt, AxisAddRemove, Broadcast and Linspace to computed shapes,
        Argsort, WarpPerspective with a run-time number of matrices, ROIPooling. (Reduce is left out: MegEngine
        1.13 crashes tracing a Reduce of such a value.)"""
        a, _ = F.cond_take(x > 0, x)                                   # (n1,)
        b, bi = F.cond_take(a < 1.0, a)                                # (n2,), a CondTake of a CondTake
        m = F.concat([b, a[:3], F.ones((2,))])                         # (n2 + min(n1, 3) + 2,)
        rows = m.reshape(-1, 1) * F.ones((1, 4))                       # (r, 4)
        mat, = apply(builtin.MatrixMul(dimA=2, dimB=2), rows, weight)  # (r, 3)
        t = F.transpose(mat, (1, 0))                                   # (3, r)
        e = F.expand_dims(bi.astype("float32"), 0) + 1                 # (1, n2)
        full = F.broadcast_to(y[:1], (b.shape[0], 2))                  # (n2, 2)
        pos = F.linspace(0, 1, a.shape[0])                             # (n1,)
        _, order = apply(builtin.Argsort(order=builtin.Argsort.Order.DESCENDING), a.reshape(1, -1))
        shift = F.concat([F.ones((b.shape[0], 1)), F.zeros((b.shape[0], 1)), b.reshape(-1, 1)], axis=1)
        mats = F.concat([shift.reshape(-1, 1, 3), F.broadcast_to(F.eye(3)[1:].reshape(1, 2, 3),
                                                                     (b.shape[0], 2, 3))], axis=1)
        warp = builtin.WarpPerspective(imode="linear", bmode="replicate", format="NCHW", border_val=0.0)
        warped, = apply(warp, image, mats, F.zeros((b.shape[0],), dtype="int32"), mge.tensor(np.int32([4, 4])))
        rois = F.concat([F.zeros((b.shape[0], 1)), F.abs(full) * 2, F.abs(full) * 3 + 1], axis=1)
        pooled = F.vision.roi_pooling(image, rois, (2, 2), mode="max", scale=1.0)
        return mat, t, e, full, pos, order, warped, pooled

    x = rs.normal(0, 1, (4, 5)).astype(np.float32)
    y = rs.normal(0, 1, (3, 2)).astype(np.float32)
    yield ("ops_on_run_time_sizes", ops, [("x", x), ("y", y), ("image", image)],
           ["mat", "t", "e", "full", "pos", "order", "warped", "pooled"],
           [({"x": x}, None), ({"x": np.abs(x) + 0.2}, None),
            ({"x": np.abs(x) * 0.1 + 2}, {"mat": [5, 3], "t": [3, 5], "e": [1, 0], "full": [0, 2], "pos": [20],
                                        "order": [1, 20], "warped": [0, 2, 4, 4], "pooled": [0, 2, 2, 2]}),
            ({"x": -np.abs(x) - 0.1}, {"mat": [2, 3], "t": [3, 2], "e": [1, 0], "full": [0, 2], "pos": [0],
                                       "order": [1, 0], "warped": [0, 2, 4, 4], "pooled": [0, 2, 2, 2]})])


    def boolean_mask(boxes, scores):
        """Boolean-mask indexing as the detection code writes it (``proposals[keep_mask]`` of filter_boxes), then
        arithmetic, Concat with a reshaped companion and a second mask; traced eagerly (``symbolic=False``), the
        only way MegEngine traces a mask index."""
        keep = (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)
        kept, kept_scores = boxes[keep], scores[keep]
        rows = F.concat([kept * 2, kept_scores.reshape(-1, 1)], axis=1)
        return rows, kept[kept_scores > 0.5]

    boxes = rs.uniform(-5, 5, (10, 4)).astype(np.float32)
    box_scores = rs.uniform(0, 1, 10).astype(np.float32)
    yield ("boolean_mask_indexing", boolean_mask, [("boxes", boxes), ("scores", box_scores)], ["rows", "strong"],
           [({}, None), ({"boxes": np.abs(boxes) * np.float32([[-1, -1, 1, 1]])}, None),
            ({"scores": box_scores * np.float32(0.1)}, None),
            ({"boxes": -np.abs(boxes) * np.float32([[-1, -1, 1, 1]])}, {"rows": [0, 5], "strong": [0, 4]})])


def run_lite(path: Path, inputs: dict, outputs: list[str]) -> dict:
    import megenginelite as lite

    net = lite.LiteNetwork()
    net.load(str(path))
    for name, value in inputs.items():
        net.get_io_tensor(name).set_data_by_copy(value)
    net.forward()
    net.wait()
    values = {}
    for name in outputs:  # to_numpy() of an empty tensor is (0,) whatever its layout: keep the layout's shape
        tensor = net.get_io_tensor(name)
        values[name] = tensor.to_numpy().reshape(tuple(tensor.layout.shapes[:tensor.layout.ndim]))
    return values


def record(out_dir: Path, name: str, fn, inputs: list, output_names: list, cases: list, manifest: dict) -> None:
    """Trace ``fn`` on ``inputs`` and dump ``<name>.mge``; run it with the real Lite on each case (changed inputs,
    and the output shapes we return where the real library fails); write ``<name>.npz`` and the manifest entry.
    Traced symbolically, except functions that index with a boolean mask (``symbolic=False`` is the only way)."""
    traced = trace(fn, symbolic=fn.__name__ != "boolean_mask", capture_as_const=True)
    traced(*[mge.tensor(v) for _, v in inputs])
    path = out_dir / f"{name}.mge"
    traced.dump(str(path), arg_names=[n for n, _ in inputs], output_names=output_names)
    arrays, entries = {}, []
    for i, (change, shapes_if_failing) in enumerate(cases):
        feed = {n: change.get(n, v) for n, v in inputs}
        for n, v in feed.items():
            arrays[f"case{i}:input:{n}"] = v
        try:
            got = run_lite(path, feed, output_names)
        except Exception as exc:  # the real library fails on some inputs (nothing left)
            entries.append({"error": str(exc).splitlines()[0][:200], "shapes": shapes_if_failing})
            continue
        for n, v in got.items():
            arrays[f"case{i}:output:{n}"] = v
        entries.append({"shapes": {n: list(v.shape) for n, v in got.items()}})
    np.savez_compressed(out_dir / f"{name}.npz", **arrays)
    manifest[name] = {"file": f"{name}.mge", "inputs": [n for n, _ in inputs], "outputs": output_names,
                      "cases": entries, "note": (getattr(fn, "__doc__", None) or "").strip()}
    print(name, [e["shapes"] for e in entries], [e.get("error") for e in entries])


def main() -> None:
    require("tools/make_dynamic_fixtures.py")
    OUT.mkdir(parents=True, exist_ok=True)
    manifest: dict = {}
    for name, fn, inputs, output_names, cases in fixtures():
        record(OUT, name, fn, inputs, output_names, cases, manifest)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
