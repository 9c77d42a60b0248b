#!/usr/bin/env python3
"""Generate the detector fixtures (``tests/fixtures/detect/``): Faster R-CNN, RetinaNet and FCOS with their
post-processing inside the graph.

Run this with a Python that has the *real* MegEngine 1.13.0 (and with it the real ``megenginelite``); from the
repository root::

    "$(../shared/tools/real-megengine)" tools/make_detect_fixtures.py

The models follow MegEngine/Models ``official/vision/detection`` (re-implemented here, at toy sizes): a ResNet-18
layout with narrow widths, an FPN (P2-P6, P6 by max-pooling P5), and

- Faster R-CNN's inference path: RPN (per-level top-k of the objectness logits, box decoding, clipping to
  ``im_info``, ``filter_boxes`` (CondTake), ``batched_nms`` with the max-coordinate level offsets), rois,
  the level assignment of ``roi_pool`` (a CondTake per level, RoIAlign, argsort of the concatenated indices), the
  RCNN head (two fully connected layers on the run-time number of rois), softmax and class-aware box decoding,
  rescaled and clipped as in ``FasterRCNN.inference``;
- RetinaNet's and FCOS's inference paths (anchor boxes; anchor-free points with centerness), followed by the
  post-processing their ``tools/test.py`` does in numpy, here in the graph: score threshold (an input, so that one
  file keeps many or few detections), top-k with k computed from the survivors, class-offset NMS.

ATSS and FreeAnchor are not dumped separately: at inference they are FCOS's (points, point decoding, centerness)
and RetinaNet's graphs in MegEngine/Models (they differ in training only).

Random weights with batch-norm statistics calibrated on the reference input (as tools/make_fixtures.py does). In
symbolic tracing the Python wrappers of TopK, NMS, argsort and matmul assert on ``ndim``, unknown for run-time-sized
values, so those steps call the builtin operators through ``apply``, as the wrappers do (same dumped graph).

Each model runs with the real ``megenginelite`` on several inputs; ``<name>.npz`` holds ``case<i>:input:<name>`` /
``case<i>:output:<name>``, ``manifest.json`` the cases. Where the real library fails (no proposal left: its
``batched_nms`` takes the max over no boxes, "empty input is not allowed for reduce mode: max"), the case records
the error and the output shapes we return instead (0 rows). The tests only read the committed files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fixtures.helpers import calibrate_bn, init_params
from fixtures.models import BasicBlock
from fixtures.paths import FIXTURES
from fixtures.real_megengine import F, M, apply, builtin, mge, require
from make_dynamic_fixtures import record  # tools/, next to this script

OUT = FIXTURES / "detect"

NUM_CLASSES = 4


class Sizes(NamedTuple):
    image: int  # square input side
    widths: tuple  # backbone stage widths (ResNet-18: 64, 128, 256, 512)
    channels: int  # FPN and head channels (256 in the original)
    fc: int = 32  # Faster R-CNN's box head width (1024 in the original)
    prev_nms_top_n: int = 40  # proposals per level before the RPN's NMS (1000 in the original's test config)
    post_nms_top_n: int = 16  # proposals kept (1000)


TOY = Sizes(128, (8, 16, 24, 32), 16)  # the committed fixtures
# tools/make_bench_models.py: ResNet-18 widths, a 320x320 input, the original's proposal counts
BENCH = Sizes(320, (64, 128, 256, 512), 128, 256, 1000, 1000)
STRIDES = [4, 8, 16, 32, 64]
IMG_MEAN = np.array([103.530, 116.280, 123.675], np.float32)[None, :, None, None]
IMG_STD = np.array([57.375, 57.120, 58.395], np.float32)[None, :, None, None]


# -- operators whose functional wrappers assert on ndim in symbolic tracing --------------------------------------

def topk_desc(x, k):
    """The k largest of each row of x (F.topk(descending=True)), values and int32 indices."""
    k = mge.tensor(np.int32(-k)) if isinstance(k, int) else -k
    return apply(builtin.TopK(mode=builtin.TopK.Mode.VALUE_IDX_SORTED), x, k)


def argsort(x, descending=False):
    order = builtin.Argsort.Order.DESCENDING if descending else builtin.Argsort.Order.ASCENDING
    _, idx = apply(builtin.Argsort(order=order), x.reshape(1, -1))
    return idx.reshape(-1)


def nms(boxes, scores, thresh, max_output):
    """F.vision.nms: boxes in descending score order, NMSKeep, keep[:count]."""
    order = argsort(scores, descending=True)
    indices, count = apply(builtin.NMSKeep(thresh, max_output), boxes[order].reshape(1, -1, 4))
    return order[indices[0][:count[0]]]


def batched_nms(boxes, scores, idxs, thresh, max_output):
    """layers.batched_nms: one NMS over all classes, each class shifted by (max coordinate + 1)."""
    offsets = idxs.astype("float32") * (boxes.max() + 1)
    return nms(boxes + offsets.reshape(-1, 1), scores, thresh, max_output)


def linear(x, fc):
    """M.Linear on a run-time number of rows."""
    out, = apply(builtin.MatrixMul(transposeB=True, dimA=2, dimB=2), x, fc.weight)
    return out + fc.bias


# -- model parts (after official/vision/detection) ---------------------------------------------------------------

class Backbone(M.Module):
    """ResNet-18 layout at narrow widths; returns res2..res5."""

    def __init__(self, widths):
        super().__init__()
        self.conv1 = M.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = M.BatchNorm2d(widths[0])
        self.stages = []
        cin = widths[0]
        for i, w in enumerate(widths):
            stage = M.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1))
            setattr(self, f"res{i + 2}", stage)
            self.stages.append(stage)
            cin = w

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class FPN(M.Module):
    """Lateral 1x1 and output 3x3 convolutions, top-down nearest upsampling, P6 by max-pooling P5 (FPNP6)."""

    def __init__(self, widths, channels):
        super().__init__()
        self.lateral = [M.Conv2d(c, channels, 1) for c in widths]
        self.output = [M.Conv2d(channels, channels, 3, 1, 1) for _ in widths]
        for i, (a, b) in enumerate(zip(self.lateral, self.output)):
            setattr(self, f"lat{i}", a)
            setattr(self, f"out{i}", b)

    def forward(self, feats):
        prev = self.lateral[-1](feats[-1])
        results = [self.output[-1](prev)]
        for feat, lat, out in zip(feats[-2::-1], self.lateral[-2::-1], self.output[-2::-1]):
            top = F.nn.interpolate(prev, feat.shape[2:], mode="nearest")
            prev = lat(feat) + top
            results.insert(0, out(prev))
        results.append(F.max_pool2d(results[-1], 1, 2))
        return results  # p2..p6


def anchors_for(feat, stride, scales, ratios, offset=0.5):
    """AnchorBoxGenerator: base anchors (per scale and ratio) around each cell centre, (H*W*A, 4)."""
    base = []
    for scale in scales:
        for ratio in ratios:
            w = math.sqrt(scale * scale / ratio)
            h = ratio * w
            base.append([-w / 2, -h / 2, w / 2, h / 2])
    h, w = feat.shape[2:]
    shift = offset * stride
    xs = F.arange(shift, w * stride + shift, step=stride)
    ys = F.arange(shift, h * stride + shift, step=stride)
    gx = F.broadcast_to(xs, (h, w)).reshape(-1)
    gy = F.broadcast_to(ys.reshape(-1, 1), (h, w)).reshape(-1)
    grid = F.stack([gx, gy, gx, gy], axis=1)
    return (F.expand_dims(grid, 1) + F.expand_dims(mge.tensor(np.array(base, np.float32)), 0)).reshape(-1, 4)


def decode(anchors, deltas, std=(1.0, 1.0, 1.0, 1.0)):
    """BoxCoder.decode (reg_mean 0) of (N, 4) deltas on (N, 4) anchors."""
    deltas = deltas * np.array(std, np.float32)[None, :]
    width = F.expand_dims(anchors[:, 2] - anchors[:, 0], 1)
    height = F.expand_dims(anchors[:, 3] - anchors[:, 1], 1)
    cx = F.expand_dims(anchors[:, 0], 1) + 0.5 * width
    cy = F.expand_dims(anchors[:, 1], 1) + 0.5 * height
    pcx = cx + deltas[:, 0::4] * width
    pcy = cy + deltas[:, 1::4] * height
    pw = width * F.exp(deltas[:, 2::4])
    ph = height * F.exp(deltas[:, 3::4])
    box = F.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=2)
    return box.reshape(-1, 4)  # reshape(box.shape[0], -1) in the original: see the F.flatten note in FasterRCNN


def clip_boxes(boxes, hw):
    """get_clipped_boxes (F.clip in the original: in symbolic tracing it takes a tensor bound for a constant 0)."""
    def clip(x, upper):
        return F.minimum(F.maximum(x, 0), upper)
    return F.concat([clip(boxes[:, 0::4], hw[1]), clip(boxes[:, 1::4], hw[0]),
                     clip(boxes[:, 2::4], hw[1]), clip(boxes[:, 3::4], hw[0])], axis=1)


def preprocess(image):
    return (image - IMG_MEAN) / IMG_STD


class FasterRCNN(M.Module):
    """Two-stage: RPN proposals, NMS, RoIAlign of the survivors, RCNN head."""

    POOL = (3, 3)

    def __init__(self, sizes: Sizes):
        super().__init__()
        c, fc = sizes.channels, sizes.fc
        self.sizes = sizes
        self.backbone, self.fpn = Backbone(sizes.widths), FPN(sizes.widths, c)
        self.ratios, self.num_anchors = [0.5, 1, 2], 3
        self.rpn_conv = M.Conv2d(c, c, 3, 1, 1)
        self.rpn_cls = M.Conv2d(c, self.num_anchors, 1)
        self.rpn_box = M.Conv2d(c, self.num_anchors * 4, 1)
        self.fc1 = M.Linear(c * self.POOL[0] * self.POOL[1], fc)
        self.fc2 = M.Linear(fc, fc)
        self.pred_cls = M.Linear(fc, NUM_CLASSES + 1)
        self.pred_delta = M.Linear(fc, NUM_CLASSES * 4)

    def rpn(self, feats, im_info):
        proposals, scores, levels = [], [], []
        for level, (feat, stride) in enumerate(zip(feats, STRIDES)):
            t = F.relu(self.rpn_conv(feat))
            logits = self.rpn_cls(t)[0].transpose(1, 2, 0).flatten()
            offsets = self.rpn_box(t)[0].reshape(self.num_anchors, 4, *t.shape[2:]).transpose(2, 3, 0, 1)
            boxes = decode(anchors_for(feat, stride, [stride * 8], self.ratios), offsets.reshape(-1, 4))
            k = min(self.sizes.prev_nms_top_n, logits.shape[0])
            top, order = topk_desc(logits.reshape(1, -1), k)
            proposals.append(boxes[order.reshape(-1)])
            scores.append(top.reshape(-1))
            levels.append(F.full_like(top.reshape(-1), level))
        proposals = clip_boxes(F.concat(proposals), im_info[0])
        scores, levels = F.concat(scores), F.concat(levels)
        keep = (proposals[:, 2] - proposals[:, 0] > 0) & (proposals[:, 3] - proposals[:, 1] > 0)  # filter_boxes
        _, inds = F.cond_take(keep, scores)  # proposals[keep] (boolean indexing needs a value in symbolic tracing)
        proposals, scores, levels = proposals[inds], scores[inds], levels[inds]
        kept = batched_nms(proposals, scores, levels, 0.7, self.sizes.post_nms_top_n)
        rois = F.concat([proposals, scores.reshape(-1, 1)], axis=1)[kept]
        return F.concat([F.zeros((rois.shape[0], 1)), rois[:, :4]], axis=1)

    def roi_pool(self, feats, rois):
        """layers.roi_pool with roi_align: levels by box size, one CondTake per level, outputs back in roi order."""
        num = len(feats)
        area = (rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])
        level = F.floor(4 + F.log(F.sqrt(area) / 224) / math.log(2)).astype("int32")
        level = F.maximum(F.minimum(level, 2 + num - 1), 2) - 2
        level = F.concat([level, F.arange(num, dtype="int32")])
        rois = F.concat([rois, F.zeros((num, 5))])
        pooled, order = [], []
        for i, (feat, stride) in enumerate(zip(feats, STRIDES)):
            _, inds = F.cond_take(level == i, level)
            pooled.append(F.vision.roi_align(feat, rois[inds], self.POOL, mode="average", spatial_scale=1.0 / stride,
                                             sample_points=2, aligned=True))
            order.append(inds)
        fm_order = argsort(F.concat(order))
        return F.concat(pooled)[fm_order][:-num]

    def forward(self, image, im_info):
        """FasterRCNN.inference: class scores (R, classes) and class-aware boxes (R, classes, 4) of the rois."""
        feats = self.fpn(self.backbone(preprocess(image)))
        rois = self.rpn(feats, im_info)
        pooled = self.roi_pool(feats[:4], rois)
        # F.flatten(pooled, 1) in the original: MegEngine 1.13 overflows tracing it on a run-time number of rois
        x = F.relu(linear(pooled.reshape(-1, self.sizes.channels * self.POOL[0] * self.POOL[1]), self.fc1))
        x = F.relu(linear(x, self.fc2))
        scores = F.softmax(linear(x, self.pred_cls), axis=1)[:, 1:]
        deltas = linear(x, self.pred_delta).reshape(-1, 4)
        base = F.broadcast_to(F.expand_dims(rois[:, 1:5], 1), (rois.shape[0], NUM_CLASSES, 4)).reshape(-1, 4)
        boxes = decode(base, deltas, (0.1, 0.1, 0.2, 0.2))
        scale_w, scale_h = im_info[0, 1] / im_info[0, 3], im_info[0, 0] / im_info[0, 2]
        boxes = boxes / F.concat([scale_w, scale_h, scale_w, scale_h], axis=0)
        boxes = clip_boxes(boxes, im_info[0, 2:4]).reshape(-1, NUM_CLASSES, 4)
        return scores, boxes


class RetinaNet(M.Module):
    MAX_DETECTIONS = 12

    def __init__(self, sizes: Sizes):
        super().__init__()
        c = sizes.channels
        self.backbone, self.fpn = Backbone(sizes.widths), FPN(sizes.widths, c)
        self.num_anchors = 9
        self.cls_tower = M.Sequential(M.Conv2d(c, c, 3, 1, 1), M.ReLU())
        self.box_tower = M.Sequential(M.Conv2d(c, c, 3, 1, 1), M.ReLU())
        self.cls_score = M.Conv2d(c, self.num_anchors * NUM_CLASSES, 3, 1, 1)
        self.bbox_pred = M.Conv2d(c, self.num_anchors * 4, 3, 1, 1)

    def head(self, image, im_info):
        """RetinaNet.inference: (boxes (A, 4), class scores (A, classes)) of every anchor."""
        feats = self.fpn(self.backbone(preprocess(image)))[1:]  # p3..p7 in the original; p3..p6 here
        logits, offsets, anchors = [], [], []
        for feat, stride in zip(feats, STRIDES[1:]):
            logits.append(self.cls_score(self.cls_tower(feat)).transpose(0, 2, 3, 1).reshape(1, -1, NUM_CLASSES))
            offsets.append(self.bbox_pred(self.box_tower(feat)).transpose(0, 2, 3, 1).reshape(1, -1, 4))
            anchors.append(anchors_for(feat, stride, [stride * 4 * 2 ** (i / 3) for i in range(3)], [0.5, 1, 2]))
        boxes = decode(F.concat(anchors), F.concat(offsets, axis=1)[0]).reshape(-1, 4)
        scale_w, scale_h = im_info[0, 1] / im_info[0, 3], im_info[0, 0] / im_info[0, 2]
        boxes = clip_boxes(boxes / F.concat([scale_w, scale_h, scale_w, scale_h], axis=0), im_info[0, 2:4])
        return boxes, F.sigmoid(F.concat(logits, axis=1))[0]

    def forward(self, image, im_info, thresh):
        """RetinaNet with tools/test.py's post-processing in the graph."""
        return post_process(*self.head(image, im_info), thresh, self.MAX_DETECTIONS)


def post_process(boxes, scores, thresh, max_detections):
    """tools/test.py's post-processing, in the graph: score threshold, top-k with k computed from the survivors,
    class-offset NMS; (scores, boxes, labels) of the detections."""
    flat = scores.flatten()
    kept, idx = F.cond_take(flat > thresh, flat)
    k = F.minimum(kept.shape[0], 100)
    top, order = topk_desc(kept.reshape(1, -1), k)
    top, idx = top.reshape(-1), idx[order.reshape(-1)]
    labels = idx % NUM_CLASSES
    cand = boxes[idx // NUM_CLASSES]
    keep = batched_nms(cand, top, labels, 0.5, max_detections)
    return top[keep], cand[keep], labels[keep]


class FCOS(M.Module):
    """Anchor-free: one point per cell, (left, top, right, bottom) distances, centerness."""

    MAX_DETECTIONS = 12

    def __init__(self, sizes: Sizes):
        super().__init__()
        c = sizes.channels
        self.backbone, self.fpn = Backbone(sizes.widths), FPN(sizes.widths, c)
        self.cls_subnet = M.Sequential(M.Conv2d(c, c, 3, 1, 1), M.ReLU())
        self.bbox_subnet = M.Sequential(M.Conv2d(c, c, 3, 1, 1), M.ReLU())
        self.cls_score = M.Conv2d(c, NUM_CLASSES, 3, 1, 1)
        self.bbox_pred = M.Conv2d(c, 4, 3, 1, 1)
        self.ctrness = M.Conv2d(c, 1, 3, 1, 1)

    def head(self, image, im_info):
        """FCOS.inference: (boxes (P, 4), sqrt(class score * centerness) (P, classes)) of every point."""
        feats = self.fpn(self.backbone(preprocess(image)))[1:]
        logits, offsets, ctrness, points = [], [], [], []
        for feat, stride in zip(feats, STRIDES[1:]):
            cls, box = self.cls_subnet(feat), self.bbox_subnet(feat)
            logits.append(self.cls_score(cls).transpose(0, 2, 3, 1).reshape(1, -1, NUM_CLASSES))
            offsets.append((F.relu(self.bbox_pred(box)) * stride).transpose(0, 2, 3, 1).reshape(1, -1, 4))
            ctrness.append(self.ctrness(box).transpose(0, 2, 3, 1).reshape(1, -1, 1))
            h, w = feat.shape[2:]
            xs = F.arange(stride / 2, w * stride + stride / 2, step=stride)
            ys = F.arange(stride / 2, h * stride + stride / 2, step=stride)
            points.append(F.stack([F.broadcast_to(xs, (h, w)).reshape(-1),
                                   F.broadcast_to(ys.reshape(-1, 1), (h, w)).reshape(-1)], axis=1))
        points, deltas = F.concat(points), F.concat(offsets, axis=1)[0]
        boxes = F.concat([points - deltas[:, :2], points + deltas[:, 2:]], axis=1)  # PointCoder.decode
        scale_w, scale_h = im_info[0, 1] / im_info[0, 3], im_info[0, 0] / im_info[0, 2]
        boxes = clip_boxes(boxes / F.concat([scale_w, scale_h, scale_w, scale_h], axis=0), im_info[0, 2:4])
        scores = F.sqrt(F.sigmoid(F.concat(logits, axis=1)) * F.sigmoid(F.concat(ctrness, axis=1)))[0]
        return boxes, scores

    def forward(self, image, im_info, thresh):
        """FCOS with tools/test.py's post-processing in the graph."""
        return post_process(*self.head(image, im_info), thresh, self.MAX_DETECTIONS)


def thresholds(model, image, info) -> tuple[np.ndarray, np.ndarray]:
    """Score thresholds that keep about 300 and 5 of the reference image's scores."""
    ranked = np.sort(model.head(mge.tensor(image), mge.tensor(info))[1].numpy().ravel())[::-1]
    return tuple(np.array([(ranked[n] + ranked[n + 1]) / 2], np.float32) for n in (300, 5))


def init_head(rs, convs, cls_score) -> None:
    """The originals' head initialization: normal(0, 0.01), zero bias, the focal-loss prior 0.01 on the classes."""
    for conv in convs:
        if isinstance(conv, M.Conv2d):
            conv.weight._reset(mge.tensor(rs.normal(0, 0.01, conv.weight.shape).astype(np.float32)))
            prior = -math.log(99) if conv is cls_score else 0.0
            conv.bias._reset(mge.tensor(np.full(conv.bias.shape, prior, np.float32)))


def make_detectors(out: Path, sizes: Sizes, all_cases: bool = True) -> dict:
    """Dump Faster R-CNN, RetinaNet and FCOS at ``sizes`` into ``out`` with their cases (only the reference input
    unless ``all_cases``); returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    rs = np.random.RandomState(20261205)
    mge.random.seed(20261205)
    side = sizes.image
    image = rs.randint(0, 256, (1, 3, side, side)).astype(np.float32)  # 8-bit pixel values (compress well)
    other = rs.randint(0, 256, (1, 3, side, side)).astype(np.float32)
    info = np.array([[side, side, side, side]], np.float32)
    manifest: dict = {}

    model = FasterRCNN(sizes)
    init_params(model, rs)
    for conv, std in ((model.rpn_conv, 0.01), (model.rpn_cls, 0.01), (model.rpn_box, 0.01),
                      (model.pred_cls, 0.01), (model.pred_delta, 0.001)):  # the original's head initialization
        conv.weight._reset(mge.tensor(rs.normal(0, std, conv.weight.shape).astype(np.float32)))
        conv.bias._reset(mge.tensor(np.zeros(conv.bias.shape, np.float32)))
    calibrate_bn(model.backbone, preprocess(image))  # the only batch norms
    model.eval()
    cases = [({}, None), ({"image": other}, None), ({"im_info": np.array([[12, 10, side, side]], np.float32)}, None),
             ({"im_info": np.zeros((1, 4), np.float32)}, {"scores": [0, NUM_CLASSES], "boxes": [0, NUM_CLASSES, 4]})]
    record(out, "faster_rcnn", model.forward, [("image", image), ("im_info", info)], ["scores", "boxes"],
           cases if all_cases else cases[:1], manifest)

    one_stage = [("retinanet", RetinaNet, lambda m: (*m.cls_tower, *m.box_tower, m.cls_score, m.bbox_pred)),
                 ("fcos", FCOS, lambda m: (*m.cls_subnet, *m.bbox_subnet, m.cls_score, m.bbox_pred, m.ctrness))]
    for name, cls, head_convs in one_stage:
        model = cls(sizes)
        init_params(model, rs)
        init_head(rs, head_convs(model), model.cls_score)
        calibrate_bn(model.backbone, preprocess(image))  # the only batch norms
        model.eval()
        many, few = thresholds(model, image, info)
        cases = [({}, None), ({"image": other}, None), ({"thresh": few}, None),
                 ({"thresh": np.array([1.0], np.float32)}, {"scores": [0], "boxes": [0, 4], "labels": [0]})]
        record(out, name, model.forward, [("image", image), ("im_info", info), ("thresh", many)],
               ["scores", "boxes", "labels"], cases if all_cases else cases[:1], manifest)
    return manifest


def main() -> None:
    require("tools/make_detect_fixtures.py")
    manifest = make_detectors(OUT, TOY)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
