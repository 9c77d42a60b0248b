#!/usr/bin/env python3
"""Generate the ``.mge`` test fixtures and their reference outputs.

Run this with a Python that has the *real* MegEngine 1.13.0 (and with it the real ``megenginelite``); from the
repository root::

    "$(../shared/tools/real-megengine)" tools/make_fixtures.py            # everything
    "$(../shared/tools/real-megengine)" tools/make_fixtures.py 'op_conv*'  # only fixtures matching a glob
    "$(../shared/tools/real-megengine)" tools/make_fixtures.py --list      # list fixture names

For every fixture it

1. builds a small model with ``megengine.module`` / ``megengine.functional`` and weights drawn from a seeded
   ``numpy.random.RandomState`` (MegEngine's own RNG is seeded as well),
2. traces it with ``megengine.jit.trace(symbolic=True, capture_as_const=True)`` and dumps
   ``tests/fixtures/<name>.mge``,
3. loads that file with the real ``megenginelite`` (``LiteNetwork().load``), feeds the reference inputs with
   ``set_data_by_copy``, runs ``forward()``/``wait()`` and reads the outputs with ``to_numpy()``,
4. writes ``tests/fixtures/<name>.npz`` (keys ``input:<name>`` and ``output:<name>``) and an entry of
   ``tests/fixtures/manifest.json``.

Each fixture is generated in its own subprocess (``--worker``), so that a crash of the native library on one
operator only loses that fixture; fixtures that cannot be produced are listed in ``unavailable.json`` and in the
README.  The output is deterministic: running the script twice gives byte-identical files.

This script is a development tool: the project's tests only read the committed fixtures and never need MegEngine.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import traceback
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MANIFEST = FIXTURES / "manifest.json"
UNAVAILABLE = FIXTURES / "unavailable.json"
README = FIXTURES / "README.md"

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5

# The references must come from the *real* megenginelite, never from this repository's package.
sys.path[:] = [p for p in sys.path if p not in ("", ".") and Path(p).resolve() != ROOT]

# MegEngine is only needed to generate fixtures; without it ``--list`` and ``--check-only`` still work.
try:
    import megengine as mge
    import megengine.functional as F
    import megengine.module as M
    from megengine.jit import trace
except ImportError:  # pragma: no cover - environment without MegEngine
    import types

    mge = F = trace = None
    M = types.SimpleNamespace(Module=object)


def _import_megengine():
    if mge is None:
        raise SystemExit("generating fixtures needs the real MegEngine 1.13.0: run with "
                         '"$(../shared/tools/real-megengine)" tools/make_fixtures.py')


# ---------------------------------------------------------------------------------------------------------------
# Fixture registry
# ---------------------------------------------------------------------------------------------------------------


class Spec:
    """What a fixture builder returns.

    fn:            the function to trace; it takes the inputs positionally (in ``inputs`` order).
    inputs:        list of (name, ndarray); the names become ``arg_names``.
    output_names:  ``output_names`` for the dump, or None to keep MegEngine's default var names.
    dump:          extra keyword arguments for ``trace.dump`` (options the fixture is about).
    file:          reuse an already generated ``.mge`` (relative to tests/fixtures) instead of dumping.
    expect_ops:    file operator types that must appear in the dump (checked; the fixture fails otherwise).
    expect_modes:  Elemwise modes that must appear in the dump (checked likewise).
    """

    def __init__(self, fn=None, inputs=(), output_names=None, dump=None, file=None, rtol=DEFAULT_RTOL,
                 atol=DEFAULT_ATOL, note="", expect_ops=(), expect_modes=(), extra=None, dropped_inputs=(),
                 manifest_extra=None):
        self.fn = fn
        self.inputs = list(inputs)
        self.output_names = output_names
        self.dump = dict(dump or {})
        self.file = file
        self.rtol = rtol
        self.atol = atol
        self.note = note
        self.expect_ops = list(expect_ops)
        self.expect_modes = list(expect_modes)
        self.extra = dict(extra or {})
        self.dropped_inputs = list(dropped_inputs)  # inputs the dump is known to drop (not in the file)
        self.manifest_extra = dict(manifest_extra or {})  # extra fields for the manifest entry


REGISTRY: dict[str, dict] = {}


def fixture(name, category="op", group=2, depends=None, timeout=None):
    def deco(builder):
        assert name not in REGISTRY, name
        REGISTRY[name] = {"builder": builder, "category": category, "group": group, "depends": depends,
                          "timeout": timeout}
        return builder

    return deco


def register(name, builder, category="op", group=2, depends=None, timeout=None):
    fixture(name, category, group, depends, timeout)(builder)


# ---------------------------------------------------------------------------------------------------------------
# Helpers used by the builders
# ---------------------------------------------------------------------------------------------------------------


def rng(name, salt=0):
    """A RandomState seeded from the fixture name (stable across Python runs, unlike hash())."""
    seed = (sum((i + 1) * b for i, b in enumerate(name.encode())) * 7919 + salt) % (2**31 - 1)
    return np.random.RandomState(seed)


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def init_params(module, rs, linear_gain=1.0):
    """Overwrite every parameter of ``module`` with values from ``rs`` (deterministic, independent of MegEngine's
    initialisers).  Conv / linear weights get a He-style scale so activations keep a sane magnitude."""
    for _, m in sorted(module.named_modules(), key=lambda kv: kv[0]):
        if isinstance(m, (M.BatchNorm1d, M.BatchNorm2d)):
            if m.weight is not None:
                _set(m.weight, rs.uniform(0.7, 1.3, m.weight.shape))
                _set(m.bias, rs.normal(0.0, 0.1, m.bias.shape))
        elif isinstance(m, (M.LayerNorm, M.GroupNorm, M.InstanceNorm)):
            if getattr(m, "weight", None) is not None:
                _set(m.weight, rs.uniform(0.8, 1.2, m.weight.shape))
                _set(m.bias, rs.normal(0.0, 0.05, m.bias.shape))
        elif isinstance(m, M.Embedding):
            _set(m.weight, rs.normal(0.0, 1.0, m.weight.shape))
        elif isinstance(m, (M.Conv2d, M.ConvTranspose2d, M.Linear)):
            shape = tuple(m.weight.shape)
            fan_in = int(np.prod(shape[-3:])) if len(shape) >= 4 else int(shape[1])
            gain = linear_gain if isinstance(m, M.Linear) else math.sqrt(2.0)
            _set(m.weight, rs.normal(0.0, gain / math.sqrt(fan_in), shape))
            if getattr(m, "bias", None) is not None:
                _set(m.bias, rs.normal(0.0, 0.05, m.bias.shape))


def _set(param, value):
    param._reset(mge.tensor(np.asarray(value, dtype=np.float32)))


def calibrate_bn(model, batch):
    """Set every BatchNorm's running statistics to the statistics of the activations it actually sees for
    ``batch``: one forward pass in train mode with momentum 0 replaces the running stats with the batch stats, and
    since all BN layers are updated in the same pass, eval mode then reproduces the train-mode activations."""
    bns = [m for _, m in model.named_modules() if isinstance(m, (M.BatchNorm1d, M.BatchNorm2d))]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model.train()
    model(mge.tensor(batch))
    for bn, mom in zip(bns, saved):
        bn.momentum = mom
    model.eval()


def module_spec(model, inputs, **kw):
    """Spec for an nn.Module in eval mode."""
    model.eval()

    def fn(*args):
        return model(*args)

    return Spec(fn, inputs, **kw)


# ---------------------------------------------------------------------------------------------------------------
# Group 1: models
# ---------------------------------------------------------------------------------------------------------------


def _conv_bn(cin, cout, k, stride=1, groups=1, act=True):
    layers = [M.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), M.BatchNorm2d(cout)]
    if act:
        layers.append(M.ReLU())
    return M.Sequential(*layers)


class ShuffleUnit(M.Module):
    """ShuffleNetV2 unit.  stride 1: split channels in two halves (via channel shuffle), transform one.
    stride 2: transform the whole input in two branches and concatenate (channels double)."""

    def __init__(self, cin, cout, mid, stride):
        super().__init__()
        self.stride = stride
        out_main = cout - cin
        self.main = M.Sequential(
            _conv_bn(cin, mid, 1),
            _conv_bn(mid, mid, 3, stride, groups=mid, act=False),
            _conv_bn(mid, out_main, 1),
        )
        if stride == 2:
            self.proj = M.Sequential(
                _conv_bn(cin, cin, 3, stride, groups=cin, act=False),
                _conv_bn(cin, cin, 1),
            )

    @staticmethod
    def split_shuffle(x):
        n, c, h, w = x.shape
        x = x.reshape(n, c // 2, 2, h * w)
        x = x.transpose(2, 0, 1, 3)
        x = x.reshape(2, n, c // 2, h, w)
        return x[0], x[1]

    def forward(self, x):
        if self.stride == 1:
            keep, work = self.split_shuffle(x)
            return F.concat([keep, self.main(work)], 1)
        return F.concat([self.proj(x), self.main(x)], 1)


class ShuffleNetV2(M.Module):
    def __init__(self, stages=(4, 8, 4), channels=(24, 116, 232, 464, 1024), num_classes=1000, pool=7,
                 softmax=True):
        super().__init__()
        self.stem = _conv_bn(3, channels[0], 3, 2)
        self.maxpool = M.MaxPool2d(3, 2, 1)
        units = []
        cin = channels[0]
        for repeat, cout in zip(stages, channels[1:4]):
            for i in range(repeat):
                if i == 0:
                    units.append(ShuffleUnit(cin, cout, cout // 2, 2))
                else:
                    units.append(ShuffleUnit(cout // 2, cout, cout // 2, 1))
            cin = cout
        self.features = M.Sequential(*units)
        self.last = _conv_bn(cin, channels[4], 1)
        self.pool = M.AvgPool2d(pool)
        self.fc = M.Linear(channels[4], num_classes, bias=False)
        self.nfeat = channels[4]
        self.softmax = softmax

    def forward(self, x):
        x = self.maxpool(self.stem(x))
        x = self.last(self.features(x))
        x = self.pool(x)
        x = x.reshape(-1, self.nfeat)
        x = self.fc(x)
        return F.softmax(x) if self.softmax else x


def _shufflenet_full():
    rs = np.random.RandomState(20240601)
    model = ShuffleNetV2()
    # Linear gain 6: logits std ~ a few units, so the softmax is peaked and clearly depends on the input.
    init_params(model, rs, linear_gain=6.0)
    calibrate_bn(model, rs.uniform(0, 1, (8, 3, 224, 224)).astype("float32"))
    return model


SHUFFLENET_NOTE = ("Full-size ShuffleNetV2 1.0x with seeded random weights, BN calibrated on uniform(0,1) data; "
                   "reference input RandomState(0).uniform(0,1,(1,3,224,224)). Output keeps MegEngine's default "
                   "var name.")


@fixture("shufflenet_v2", "model", group=1)
def _():
    model = _shufflenet_full()
    data = np.random.RandomState(0).uniform(0, 1, (1, 3, 224, 224)).astype("float32")
    return module_spec(model, [("data", data)], note=SHUFFLENET_NOTE, extra={"seed_print": True},
                       expect_ops=["Convolution", "PoolingV1", "MatrixMulV2", "Softmax", "Dimshuffle"])


@fixture("shufflenet_v2_b4", "model", group=1, depends="shufflenet_v2")
def _():
    data = np.random.RandomState(1).uniform(0, 1, (4, 3, 224, 224)).astype("float32")
    return Spec(None, [("data", data)], file="shufflenet_v2.mge",
                note="Same file as shufflenet_v2, fed a batch-4 input (RandomState(1).uniform(0,1,(4,3,224,224))) "
                     "by set_data_by_copy, which makes the real library re-plan for the new shape.")


class BasicBlock(M.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = M.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = M.BatchNorm2d(cout)
        self.conv2 = M.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = M.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = M.Sequential(M.Conv2d(cin, cout, 1, stride, bias=False), M.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        idn = x if self.down is None else self.down(x)
        return F.relu(y + idn)


class ResNet18Small(M.Module):
    def __init__(self, widths=(8, 16, 24, 32), num_classes=10):
        super().__init__()
        self.conv1 = M.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = M.BatchNorm2d(widths[0])
        self.maxpool = M.MaxPool2d(3, 2, 1)
        blocks = []
        cin = widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            blocks.append(BasicBlock(w, w, 1))
            cin = w
        self.layers = M.Sequential(*blocks)
        self.avgpool = M.AdaptiveAvgPool2d((1, 1))
        self.fc = M.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        x = F.flatten(self.avgpool(x), 1)
        return self.fc(x)


@fixture("resnet18_small", "model", group=1)
def _():
    rs = rng("resnet18_small")
    model = ResNet18Small()
    init_params(model, rs, linear_gain=2.0)
    calibrate_bn(model, rs.uniform(0, 1, (8, 3, 64, 64)).astype("float32"))
    data = rs.uniform(0, 1, (1, 3, 64, 64)).astype("float32")
    return module_spec(model, [("data", data)], output_names=["logits"],
                       note="ResNet-18 topology (7x7/2 stem, maxpool, 4 stages of 2 basic blocks, adaptive avg "
                            "pool, flatten, linear) with widths 8/16/24/32 (to keep the file small), BN calibrated, "
                            "10 classes.",
                       expect_ops=["Convolution", "PoolingV1", "AdaptivePoolingV1", "MatrixMulV2"])


class SqueezeExcite(M.Module):
    def __init__(self, c, r=4, gate="hsigmoid"):
        super().__init__()
        self.fc1 = M.Conv2d(c, max(c // r, 4), 1)
        self.fc2 = M.Conv2d(max(c // r, 4), c, 1)
        self.gate = gate

    def forward(self, x):
        s = x.mean(axis=3, keepdims=True).mean(axis=2, keepdims=True)
        s = self.fc2(F.relu(self.fc1(s)))
        s = F.hsigmoid(s) if self.gate == "hsigmoid" else F.sigmoid(s)
        return x * s


class InvertedResidual(M.Module):
    def __init__(self, cin, cout, expand, stride, act, se):
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.expand = None
        if expand != 1:
            self.expand = M.Sequential(M.Conv2d(cin, mid, 1, bias=False), M.BatchNorm2d(mid))
        self.dw = M.Sequential(M.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), M.BatchNorm2d(mid))
        self.se = SqueezeExcite(mid, gate=se) if se else None
        self.project = M.Sequential(M.Conv2d(mid, cout, 1, bias=False), M.BatchNorm2d(cout))
        self.act = F.relu6 if act == "relu6" else F.hswish

    def forward(self, x):
        y = x
        if self.expand is not None:
            y = self.act(self.expand(y))
        y = self.act(self.dw(y))
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.use_res else y


class MobileNetV2Small(M.Module):
    # (expand, out channels, repeats, stride, activation, squeeze-excite gate)
    CFG = [
        (1, 8, 1, 1, "relu6", None),
        (3, 16, 2, 2, "relu6", None),
        (3, 24, 2, 2, "hswish", "hsigmoid"),
        (3, 32, 2, 2, "hswish", "sigmoid"),
    ]

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = M.Sequential(M.Conv2d(3, 8, 3, 2, 1, bias=False), M.BatchNorm2d(8))
        blocks = []
        cin = 8
        for t, c, n, s, act, se in self.CFG:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, t, s if i == 0 else 1, act, se))
                cin = c
        self.blocks = M.Sequential(*blocks)
        self.head = M.Sequential(M.Conv2d(cin, 64, 1, bias=False), M.BatchNorm2d(64))
        self.fc = M.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu6(self.stem(x))
        x = self.blocks(x)
        x = F.hswish(self.head(x))
        x = F.mean(x, axis=[2, 3])
        return F.softmax(self.fc(x), axis=1)


@fixture("mobilenetv2_small", "model", group=1)
def _():
    rs = rng("mobilenetv2_small")
    model = MobileNetV2Small()
    init_params(model, rs, linear_gain=4.0)
    calibrate_bn(model, rs.uniform(0, 1, (8, 3, 64, 64)).astype("float32"))
    data = rs.uniform(0, 1, (1, 3, 64, 64)).astype("float32")
    return module_spec(model, [("data", data)], output_names=["prob"],
                       note="MobileNetV2-like: ReLU6, depthwise convs, H-swish, SE blocks with hsigmoid and "
                            "sigmoid gates, softmax head; BN calibrated.",
                       expect_ops=["Convolution", "Softmax"])


class TransformerBlock(M.Module):
    def __init__(self, dim=32, heads=4, hidden=64):
        super().__init__()
        self.heads = heads
        self.ln1 = M.LayerNorm(dim)
        self.qkv = M.Linear(dim, 3 * dim)
        self.proj = M.Linear(dim, dim)
        self.ln2 = M.LayerNorm(dim)
        self.fc1 = M.Linear(dim, hidden)
        self.fc2 = M.Linear(hidden, dim)
        self.drop = M.Dropout(0.1)

    def forward(self, x):
        b, t, c = x.shape
        h = self.heads
        qkv = self.qkv(self.ln1(x)).reshape(b, t, 3, h, c // h).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scale = q.shape[-1] ** -0.5
        att = F.softmax(F.matmul(q, k.transpose(0, 1, 3, 2)) * scale, axis=-1)
        att = self.drop(att)
        y = F.matmul(att, v).transpose(0, 2, 1, 3).reshape(b, t, c)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x


@fixture("transformer_block", "model", group=1)
def _():
    rs = rng("transformer_block")
    model = TransformerBlock()
    init_params(model, rs, linear_gain=1.5)
    data = rs.normal(0, 1, (2, 16, 32)).astype("float32")
    return module_spec(model, [("data", data)], output_names=["out"],
                       note="One pre-LN transformer encoder block, 4 heads of 8, GELU MLP, dropout (eval).",
                       expect_ops=["LayerNorm", "BatchedMatrixMulV2", "Softmax", "MatrixMulV2"])


class BertStyleLayer(M.Module):
    """One encoder layer as MegEngine/Models' official BERT writes it: its LayerNorm spelled out in means and
    powers, the tanh GELU formula, separate query/key/value Linears and an additive attention mask."""

    def __init__(self, dim=32, heads=2, hidden=64):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = M.Linear(dim, dim), M.Linear(dim, dim), M.Linear(dim, dim)
        self.out, self.fc1, self.fc2 = M.Linear(dim, dim), M.Linear(dim, hidden), M.Linear(hidden, dim)
        self.ln_w = [mge.Parameter(np.ones(dim, "float32")) for _ in range(2)]
        self.ln_b = [mge.Parameter(np.zeros(dim, "float32")) for _ in range(2)]

    def layer_norm(self, x, i):
        u = F.mean(x, 2, True)
        s = F.mean((x - u) ** 2, 2, True)
        return self.ln_w[i] * ((x - u) / ((s + 1e-12) ** 0.5)) + self.ln_b[i]

    def heads_first(self, x, b, t, c):
        return x.reshape(b, t, self.heads, c // self.heads).transpose(0, 2, 1, 3)

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = (self.heads_first(f(x), b, t, c) for f in (self.query, self.key, self.value))
        scores = F.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(c // self.heads) + mask
        ctx = F.matmul(F.softmax(scores, 3), v).transpose(0, 2, 1, 3).reshape(b, t, c)
        a = self.layer_norm(self.out(ctx) + x, 0)
        h = self.fc1(a)
        h = h * 0.5 * (1.0 + F.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * (h ** 3))))
        return self.layer_norm(self.fc2(h) + a, 1)


@fixture("bert_layer", "model", group=1)
def _():
    rs = rng("bert_layer")
    model = BertStyleLayer()
    init_params(model, rs, linear_gain=1.5)
    for w, b in zip(model.ln_w, model.ln_b):
        w.set_value(rs.uniform(0.5, 1.5, w.shape).astype("float32"))
        b.set_value(rs.normal(0, 0.1, b.shape).astype("float32"))
    data = rs.normal(0, 1, (2, 8, 32)).astype("float32")
    mask = np.where(rs.uniform(0, 1, (2, 1, 1, 8)) < 0.25, -10000.0, 0.0).astype("float32")
    return module_spec(model, [("data", data), ("mask", mask)], output_names=["out"],
                       note="Official-BERT-style encoder layer (written-out LayerNorm and tanh GELU, additive mask): "
                            "the pattern graph/fusions.py fuses.",
                       expect_ops=["BatchedMatrixMulV2", "Softmax", "ReduceV2", "PowC"])


@fixture("two_in_two_out", "model", group=1)
def _():
    rs = rng("two_in_two_out")
    w = f32(rs.normal(0, 0.5, (8, 8)))

    def fn(a, b):
        wt = mge.tensor(w)
        s = F.matmul(a, wt) + b * F.sigmoid(a)
        p = F.tanh(a * b) - F.exp(-F.abs(b)) * a
        return s, p

    return Spec(fn, [("a", f32(rs.normal(0, 1, (1, 8)))), ("b", f32(rs.normal(0, 1, (1, 8))))],
                output_names=["sum_out", "prod_out"], note="Two named inputs, two named outputs.")


@fixture("int32_input", "model", group=1)
def _():
    rs = rng("int32_input")
    emb = M.Embedding(10, 4)
    init_params(emb, rs)

    def fn(idx):
        e = emb(idx)                                   # (1,6,4) gather from the table
        g = e.sum(axis=2)                              # (1,6)
        s = (idx * 3 + 1).astype("float32") * 0.5      # int arithmetic then cast
        return g + s

    idx = rs.randint(0, 10, (1, 6)).astype("int32")
    return Spec(fn, [("idx", idx)], output_names=["out"],
                note="int32 input used as embedding indices (IndexingMultiAxisVec) and in int arithmetic cast to "
                     "float.", expect_ops=["IndexingMultiAxisVec", "TypeCvtV2"])


@fixture("uint8_input", "model", group=1)
def _():
    rs = rng("uint8_input")
    conv = M.Conv2d(3, 8, 3, 1, 1)
    init_params(conv, rs)

    def fn(img):
        x = (img.astype("float32") - 127.5) / 58.0
        return F.relu(conv(x))

    img = rs.randint(0, 256, (1, 3, 32, 32)).astype("uint8")
    return Spec(fn, [("data", img)], output_names=["out"],
                note="uint8 image converted to float and normalised, then conv + relu.",
                expect_ops=["TypeCvtV2", "Convolution"])


@fixture("shufflenet_v2_fused", "model", group=1)
def _():
    rs = rng("shufflenet_v2_fused")
    model = ShuffleNetV2(stages=(2, 3, 2), channels=(16, 32, 64, 128, 128), num_classes=10, pool=3, softmax=True)
    init_params(model, rs, linear_gain=4.0)
    calibrate_bn(model, rs.uniform(0, 1, (8, 3, 96, 96)).astype("float32"))
    data = rs.uniform(0, 1, (1, 3, 96, 96)).astype("float32")
    return module_spec(model, [("data", data)], dump={"enable_fuse_conv_bias_nonlinearity": True},
                       note="Reduced-width ShuffleNetV2 (stages 2/3/2, channels 16/32/64/128/128, input 96x96) "
                            "dumped with enable_fuse_conv_bias_nonlinearity=True.",
                       expect_ops=["ConvBiasForward"])


# ---------------------------------------------------------------------------------------------------------------
# Group 2: one operator (or mode) per fixture
# ---------------------------------------------------------------------------------------------------------------


def op(name, fn, inputs, out="auto", expect_ops=(), expect_modes=(), **kw):
    """Register an operator fixture.  ``inputs(rs)`` returns [(name, array)]; ``out`` are the output names
    ("auto": ``out`` / ``out0``, ``out1``...; None: MegEngine's default var names)."""

    def builder():
        rs = rng(name)
        return Spec(fn, inputs(rs), output_names=out, expect_ops=expect_ops, expect_modes=expect_modes, **kw)

    register(name, builder)


def raw_elemwise(mode, *xs):
    from megengine.core._imperative_rt.core2 import apply
    from megengine.core.ops import builtin

    return apply(builtin.Elemwise(mode=mode), *xs)[0]


EW_SHAPE = (4, 6)


def _x(*shape, scale=1.0, name="x"):
    return lambda rs: [(name, f32(rs.normal(0, scale, shape)))]


def _normal(scale=1.0, shape=EW_SHAPE):
    return lambda rs: f32(rs.normal(0, scale, shape))


def _uniform(lo, hi, shape=EW_SHAPE):
    return lambda rs: f32(rs.uniform(lo, hi, shape))


def _nonzero(lo=0.5, hi=2.0, shape=EW_SHAPE):
    return lambda rs: f32(rs.uniform(lo, hi, shape) * rs.choice([-1.0, 1.0], shape))


def _intlike(lo=-2, hi=3, shape=EW_SHAPE):
    return lambda rs: f32(rs.randint(lo, hi, shape))


def _with_zeros(scale=2.0, shape=EW_SHAPE):
    def gen(rs):
        a = rs.normal(0, scale, shape)
        a[rs.uniform(0, 1, shape) < 0.25] = 0.0
        return f32(a)

    return gen


def _halves(rs):
    a = rs.normal(0, 3, EW_SHAPE)
    a.flat[:10] = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -3.5, 0.0, 4.5]
    return f32(a)


def _nan_inf(rs):
    a = rs.normal(0, 1, EW_SHAPE)
    a.flat[[1, 5, 9]] = np.nan
    a.flat[[2, 7]] = np.inf
    a.flat[[11]] = -np.inf
    return f32(a)


N, U = _normal, _uniform
# mode -> input generators (arity = len); domains chosen inside each function's domain.
# (NEQ, ISNAN and ISINF exist in the enum but megdnn's Elemwise rejects them; they are ElemwiseMultiType modes,
# covered by the op_cmp_* fixtures.)
ELEMWISE_FLOAT = {
    # unary
    "RELU": [N(2)], "ABS": [N(2)], "ACOS": [U(-0.99, 0.99)], "ASIN": [U(-0.99, 0.99)], "CEIL": [N(3)],
    "COS": [N(3)], "EXP": [N(1.5)], "EXPM1": [N(1)], "FLOOR": [N(3)], "LOG": [U(0.05, 5)],
    "LOG1P": [U(-0.9, 5)], "NEGATE": [N(2)], "SIGMOID": [N(3)], "SIN": [N(3)], "TANH": [N(2)],
    "FAST_TANH": [U(-3, 3)], "ROUND": [_halves], "ERF": [N(1.5)], "ERFINV": [U(-0.95, 0.95)],
    "ERFC": [N(1.5)], "ERFCINV": [U(0.05, 1.95)], "H_SWISH": [N(4)], "SILU": [N(3)], "GELU": [N(3)],
    "SINH": [U(-3, 3)], "COSH": [U(-3, 3)], "ASINH": [N(3)], "ACOSH": [U(1.05, 6)], "ATANH": [U(-0.9, 0.9)],
    "TAN": [U(-1.3, 1.3)], "SOFTPLUS": [N(4)], "RELU6": [N(5)], "HSIGMOID": [N(4)], "LOGSIGMOID": [N(4)],
    "SQRT": [U(0.01, 6)], "SQUARE": [N(2)], "SIGN": [_with_zeros()],
    # binary
    "ABS_GRAD": [_with_zeros(), N()], "ADD": [N(), N()], "FLOOR_DIV": [N(4), _nonzero()], "MAX": [N(), N()],
    "MIN": [N(), N()], "MOD": [N(5), _nonzero()], "MUL": [N(), N()], "POW": [U(0.1, 3), N(1.5)],
    "SIGMOID_GRAD": [U(0, 1), N()], "SUB": [N(), N()], "SWITCH_GT0": [_with_zeros(), N()],
    "TANH_GRAD": [U(-1, 1), N()], "TRUE_DIV": [N(2), _nonzero()], "LOG_SUM_EXP": [N(3), N(3)],
    "LT": [_intlike(), _intlike()], "LEQ": [_intlike(), _intlike()], "EQ": [_intlike(), _intlike()],
    "FUSE_ADD_RELU": [N(), N()], "FUSE_ADD_SIGMOID": [N(2), N(2)],
    "FUSE_ADD_TANH": [N(), N()], "FAST_TANH_GRAD": [U(-3, 3), N()], "ATAN2": [N(), N()],
    "H_SWISH_GRAD": [N(4), N()], "FUSE_ADD_H_SWISH": [N(3), N(2)], "SILU_GRAD": [N(3), N()],
    "GELU_GRAD": [N(3), N()], "ASINH_GRAD": [N(2), N()], "ACOSH_GRAD": [U(1.1, 4), N()],
    "ATANH_GRAD": [U(-0.9, 0.9), N()], "PRELU": [N(2), U(0.05, 0.5)], "SOFTPLUS_GRAD": [N(3), N()],
    "RELU6_GRAD": [N(5), N()], "HSIGMOID_GRAD": [N(4), N()],
    # ternary / 4-ary
    "COND_LEQ_MOV": [_intlike(), _intlike(), N()], "COND_LT_MOV": [_intlike(), _intlike(), N()],
    "FUSE_MUL_ADD3": [N(), N(), N()], "FUSE_MUL_ADD4": [N(), N(), N(), N()],
    "CLIP": [N(2), U(-1.0, -0.2), U(0.2, 1.0)], "PRELU_GRAD": [N(2), N(), U(0.05, 0.5)],
}
# modes that PassConvertToCompatible rewrites at dump time unless no_change_graph=True
COMPAT_REWRITTEN = ["SQRT", "SQUARE", "TAN", "SINH", "COSH", "ASINH", "ACOSH", "ATANH", "CLIP", "SIGN",
                    "HSIGMOID", "RELU6", "PRELU", "SOFTPLUS", "LOGSIGMOID"]
COMPAT_NOTES = {
    "SIGN": " MegEngine 1.13 bug: the rewrite is SUB(LT(x,0), LT(0,x)), i.e. -sign(x); the reference (real "
            "lite running the file) therefore holds -sign(x), while megengine's imperative result is sign(x).",
    "CLIP": " MegEngine 1.13 bug: the rewrite is MIN(lower, MAX(x, lower)) -- the upper bound is replaced by the "
            "lower one, so input z (upper) is not in the file and the output equals y (lower) everywhere.",
}
# Elemwise modes whose result is bool (cast to int32 for the output, Lite cannot return bool)
BOOL_RESULT = {"ISNAN", "ISINF"}
ELEMWISE_TOL = {
    # modes where an independent float32 implementation legitimately differs more than 1e-4 relative
    "ERFINV": (1e-3, 1e-5, "erfinv of float32 near +-0.95 is ill-conditioned"),
    "ERFCINV": (1e-3, 1e-5, "erfcinv of float32 near 0.05/1.95 is ill-conditioned"),
    "TAN": (1e-3, 1e-5, "tan near +-1.3 amplifies float32 rounding"),
}


def _register_elemwise():
    for mode, gens in ELEMWISE_FLOAT.items():
        arity = len(gens)
        names = ["x", "y", "z", "w"][:arity]
        rtol, atol, tnote = ELEMWISE_TOL.get(mode, (DEFAULT_RTOL, DEFAULT_ATOL, ""))

        def inputs(rs, gens=gens, names=names):
            return [(n, g(rs)) for n, g in zip(names, gens)]

        def fn(*xs, mode=mode):
            return raw_elemwise(mode, *xs)

        note = f"Elemwise {mode} on float32 ({arity} input{'s' if arity > 1 else ''})."
        if tnote:
            note += f" Tolerance: {tnote}."
        if mode in COMPAT_REWRITTEN:
            extra_note = COMPAT_NOTES.get(mode, "")
            op(f"op_elemwise_{mode.lower()}", fn, inputs, rtol=rtol, atol=atol,
               dropped_inputs=["z"] if mode == "CLIP" else [],
               note=note + " Default dump: the compatibility pass rewrites this mode into other Elemwise "
                           "modes." + extra_note)
            op(f"op_elemwise_{mode.lower()}_raw", fn, inputs, rtol=rtol, atol=atol, expect_modes=[mode],
               dump={"no_change_graph": True}, note=note + " Dumped with no_change_graph=True: the raw mode.")
        else:
            op(f"op_elemwise_{mode.lower()}", fn, inputs, rtol=rtol, atol=atol, expect_modes=[mode], note=note)

    # ElemwiseMultiType-based predicates (F.isnan/isinf/equal/...): the default dump rewrites them into
    # Elemwise + TypeCvt(Bool); no_change_graph=True keeps ElemwiseMultiType.  Bool results are cast to int32.
    preds = {
        "isnan": (lambda x: F.isnan(x).astype("int32"), lambda rs: [("x", _nan_inf(rs))]),
        "isinf": (lambda x: F.isinf(x).astype("int32"), lambda rs: [("x", _nan_inf(rs))]),  # see note
        "equal": (lambda x, y: F.equal(x, y).astype("int32"),
                  lambda rs: [("x", _intlike()(rs)), ("y", _intlike()(rs))]),
        "not_equal": (lambda x, y: F.not_equal(x, y).astype("int32"),
                      lambda rs: [("x", _intlike()(rs)), ("y", _intlike()(rs))]),
        "less": (lambda x, y: F.less(x, y).astype("int32"), lambda rs: [("x", _intlike()(rs)), ("y", _intlike()(rs))]),
        "less_equal": (lambda x, y: F.less_equal(x, y).astype("int32"),
                       lambda rs: [("x", _intlike()(rs)), ("y", _intlike()(rs))]),
        "greater": (lambda x, y: F.greater(x, y).astype("int32"),
                    lambda rs: [("x", _intlike()(rs)), ("y", _intlike()(rs))]),
        "greater_equal": (lambda x, y: F.greater_equal(x, y).astype("int32"),
                          lambda rs: [("x", _intlike()(rs)), ("y", _intlike()(rs))]),
    }
    for pname, (fn, gen) in preds.items():
        extra = (" MegEngine 1.13 rewrites ISINF at dump time as EQ(x, +inf) only, so -inf gives 0 in the "
                 "reference (megengine's imperative result gives 1)." if pname == "isinf" else "")
        op(f"op_cmp_{pname}", fn, gen, note=f"F.{pname} (bool result cast to int32), default dump." + extra)
        op(f"op_cmp_{pname}_raw", fn, gen, dump={"no_change_graph": True},
           note=f"F.{pname} (bool result cast to int32), dumped with no_change_graph=True "
                "(ElemwiseMultiType stays in the file).")
    op("op_cmp_int32_less", lambda x, y: F.less(x, y).astype("int32"),
       lambda rs: [("x", rs.randint(-3, 3, EW_SHAPE).astype("int32")),
                   ("y", rs.randint(-3, 3, EW_SHAPE).astype("int32"))],
       note="F.less on int32 inputs, cast to int32.")

    def logic_inputs(rs):
        return [("x", f32(rs.normal(0, 1, EW_SHAPE))), ("y", f32(rs.normal(0, 1, EW_SHAPE)))]

    op("op_elemwise_not", lambda x: F.logical_not(x > 0).astype("int32"), _x(*EW_SHAPE),
       expect_modes=["NOT"], note="Elemwise NOT on bool (made by x > 0), cast to int32.")
    for mode in ("AND", "OR", "XOR"):
        op(f"op_elemwise_{mode.lower()}",
           lambda x, y, f=f"logical_{mode.lower()}": getattr(F, f)(x > 0, y > 0).astype("int32"), logic_inputs,
           expect_modes=[mode], note=f"Elemwise {mode} on bool (made by comparisons), cast to int32.")

    # int32 elemwise
    def ints(lo, hi, lo2=None, hi2=None, nonzero=False, shape=EW_SHAPE):
        def gen(rs):
            a = rs.randint(lo, hi, shape).astype("int32")
            b = rs.randint(lo if lo2 is None else lo2, hi if hi2 is None else hi2, shape).astype("int32")
            if nonzero:
                b[b == 0] = 3
            return [("x", a), ("y", b)]

        return gen

    INT_MODES = {
        "ADD": ints(-50, 50), "SUB": ints(-50, 50), "MUL": ints(-50, 50), "MAX": ints(-50, 50),
        "MIN": ints(-50, 50), "FLOOR_DIV": ints(-20, 20, -5, 6, nonzero=True),
        "MOD": ints(-20, 20, -5, 6, nonzero=True), "SHL": ints(-100, 100, 0, 8), "SHR": ints(-1000, 1000, 0, 8),
        "RMULH": ints(-2**31, 2**31 - 1),
    }
    for mode, gen in INT_MODES.items():
        op(f"op_elemwise_int32_{mode.lower()}", lambda x, y, mode=mode: raw_elemwise(mode, x, y), gen,
           expect_modes=[mode], note=f"Elemwise {mode} on int32 (negative values included).")
    for mode in ("ABS", "NEGATE", "RELU"):
        op(f"op_elemwise_int32_{mode.lower()}", lambda x, mode=mode: raw_elemwise(mode, x),
           lambda rs: [("x", rs.randint(-50, 50, EW_SHAPE).astype("int32"))], expect_modes=[mode],
           note=f"Elemwise {mode} on int32.")

    # broadcasting
    op("op_elemwise_add_broadcast", lambda x, y: x + y,
       lambda rs: [("x", f32(rs.normal(0, 1, (2, 3, 4)))), ("y", f32(rs.normal(0, 1, (3, 1))))],
       expect_modes=["ADD"], note="ADD with numpy broadcasting (2,3,4) + (3,1).")
    op("op_elemwise_mul_broadcast4d", lambda x, y: x * y,
       lambda rs: [("x", f32(rs.normal(0, 1, (2, 3, 4, 5)))), ("y", f32(rs.normal(0, 1, (1, 3, 1, 1))))],
       expect_modes=["MUL"], note="MUL with a per-channel (1,3,1,1) operand.")


_register_elemwise()


def _conv_weight(rs, shape):
    fan_in = int(np.prod(shape[-3:]))
    return f32(rs.normal(0, math.sqrt(2.0 / fan_in), shape))


def _register_nn_ops():
    # ---- Convolution: weights are dumped as constants (ImmutableTensor) ----
    conv_cases = {
        # name: (input shape, out channels, kernel, stride, padding, dilation, groups)
        "dense": ((1, 3, 8, 8), 4, 3, 1, 1, 1, 1),
        "dense_nopad": ((2, 3, 7, 9), 5, 3, 1, 0, 1, 1),
        "1x1": ((1, 6, 5, 5), 4, 1, 1, 0, 1, 1),
        "group": ((1, 4, 8, 8), 6, 3, 1, 1, 1, 2),
        "depthwise": ((1, 5, 8, 8), 5, 3, 1, 1, 1, 5),
        "depthwise_mult2": ((1, 3, 8, 8), 6, 3, 1, 1, 1, 3),
        "dilated": ((1, 3, 11, 11), 4, 3, 1, 2, 2, 1),
        "strided": ((1, 3, 9, 7), 4, 3, 2, 0, 1, 1),
        "padded_rect": ((1, 3, 8, 10), 4, (3, 5), (1, 2), (2, 1), 1, 1),
        "stride2_pad1_dilate2": ((1, 4, 12, 12), 4, 3, 2, 1, 2, 2),
    }
    for cname, (shape, oc, k, st, pad, dil, g) in conv_cases.items():
        def builder(name=f"op_conv_{cname}", shape=shape, oc=oc, k=k, st=st, pad=pad, dil=dil, g=g):
            rs = rng(name)
            conv = M.Conv2d(shape[1], oc, k, st, pad, dil, groups=g, bias=False)
            init_params(conv, rs)
            return module_spec(conv, [("x", f32(rs.normal(0, 1, shape)))], output_names=["out"],
                               expect_ops=["Convolution"],
                               note=f"Conv2d {shape} -> {oc} ch, kernel {k}, stride {st}, padding {pad}, "
                                    f"dilation {dil}, groups {g}, no bias.")

        register(f"op_conv_{cname}", builder)

    op("op_conv_weight_input", lambda x, w: F.conv2d(x, w, stride=1, padding=1),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 3, 6, 6)))), ("w", f32(rs.normal(0, 0.3, (4, 3, 3, 3))))],
       expect_ops=["Convolution"], note="F.conv2d with the filter as a second graph input (not a constant).")
    def conv_bias_builder(name, act, groups=1, fuse=True, z=False):
        def builder():
            rs = rng(name)
            cin, cout = (4, 4) if groups > 1 else (3, 6)
            conv = M.Conv2d(cin, cout, 3, 1, 1, groups=groups, bias=True)
            init_params(conv, rs)
            conv.eval()

            acts = {"identity": lambda t: t, "relu": F.relu, "sigmoid": F.sigmoid, "h_swish": F.hswish,
                    "tanh": F.tanh}

            if z:
                def fn(x, r):
                    return F.relu(conv(x) + r)
                ins = [("x", f32(rs.normal(0, 1, (1, cin, 6, 6)))), ("r", f32(rs.normal(0, 1, (1, cout, 6, 6))))]
            else:
                def fn(x):
                    return acts[act](conv(x))
                ins = [("x", f32(rs.normal(0, 1, (1, cin, 6, 6))))]
            dump = {"enable_fuse_conv_bias_nonlinearity": True} if fuse else {}
            if z:
                dump["enable_fuse_conv_bias_with_z"] = True
            return Spec(fn, ins, output_names=["out"], dump=dump, expect_ops=["ConvBiasForward"],
                        note=f"Conv2d(bias) + {act}{' + residual z' if z else ''}, groups {groups}, dumped with "
                             f"{dump} (fused ConvBias).")

        register(name, builder)

    for act in ("identity", "relu", "sigmoid", "h_swish"):
        conv_bias_builder(f"op_convbias_{act}", act)
    conv_bias_builder("op_convbias_group_relu", "relu", groups=2)
    conv_bias_builder("op_convbias_z_relu", "relu", z=True)

    # ConvBias made directly (not by the fuse pass)
    for act in ("identity", "relu", "sigmoid", "h_swish"):
        def builder(name=f"op_convbias_direct_{act}", act=act):
            rs = rng(name)
            w = _conv_weight(rs, (5, 3, 3, 3))
            b = f32(rs.normal(0, 0.2, (1, 5, 1, 1)))

            def fn(x):
                return F.nn.conv_bias_activation(x, mge.tensor(w), mge.tensor(b), dtype="float32", padding=1,
                                                 nonlinear_mode=act.upper())

            return Spec(fn, [("x", f32(rs.normal(0, 1, (1, 3, 6, 6))))], output_names=["out"],
                        expect_ops=["ConvBiasForward"],
                        note=f"ConvBias built directly by F.nn.conv_bias_activation(nonlinear_mode={act.upper()}).")

        register(f"op_convbias_direct_{act}", builder)

    # ---- ConvolutionBackwardData (transposed conv) ----
    deconv_cases = {
        "dense": ((1, 4, 5, 5), 3, 3, 2, 1, 1),
        "nopad": ((1, 2, 4, 3), 3, 3, 1, 0, 1),
        "group": ((1, 4, 5, 5), 6, 3, 2, 1, 2),
        "k4s2": ((2, 3, 4, 4), 2, 4, 2, 1, 1),
    }
    for cname, (shape, oc, k, st, pad, g) in deconv_cases.items():
        def builder(name=f"op_deconv_{cname}", shape=shape, oc=oc, k=k, st=st, pad=pad, g=g):
            rs = rng(name)
            m = M.ConvTranspose2d(shape[1], oc, k, st, pad, groups=g, bias=False)
            init_params(m, rs)
            return module_spec(m, [("x", f32(rs.normal(0, 1, shape)))], output_names=["out"],
                               expect_ops=["ConvolutionBackwardData"],
                               note=f"ConvTranspose2d {shape} -> {oc} ch, kernel {k}, stride {st}, padding {pad}, "
                                    f"groups {g}.")

        register(f"op_deconv_{cname}", builder)

    # ---- Pooling ----
    pool_cases = {
        "max_k2s2": (lambda x: F.max_pool2d(x, 2, 2), (1, 3, 8, 8)),
        "max_k3s2p1": (lambda x: F.max_pool2d(x, 3, 2, 1), (1, 3, 9, 9)),
        "max_rect": (lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 1)), (1, 2, 7, 8)),
        "avg_k2s2": (lambda x: F.avg_pool2d(x, 2, 2), (1, 3, 8, 8)),
        "avg_count_pad": (lambda x: F.avg_pool2d(x, 3, 2, 1, mode="average"), (1, 3, 9, 9)),
        "avg_exclude_pad": (lambda x: F.avg_pool2d(x, 3, 2, 1, mode="average_count_exclude_padding"),
                            (1, 3, 9, 9)),
        "avg_global7": (lambda x: F.avg_pool2d(x, 7), (2, 4, 7, 7)),
    }
    for pname, (fn, shape) in pool_cases.items():
        op(f"op_pool_{pname}", fn, _x(*shape), expect_ops=["PoolingV1"],
           note=f"Pooling ({pname}) on {shape}; avg 'average' counts padding, the default excludes it.")

    for pname, (fn, shape) in {
        "avg_3x3": (lambda x: F.adaptive_avg_pool2d(x, (3, 3)), (1, 3, 9, 9)),
        "avg_uneven": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), (1, 2, 10, 7)),
        "avg_1x1": (lambda x: F.adaptive_avg_pool2d(x, 1), (2, 3, 5, 6)),
        "max_2x2": (lambda x: F.adaptive_max_pool2d(x, (2, 2)), (1, 3, 8, 8)),
        "max_uneven": (lambda x: F.adaptive_max_pool2d(x, (4, 3)), (1, 2, 11, 7)),
    }.items():
        op(f"op_adaptive_pool_{pname}", fn, _x(*shape), expect_ops=["AdaptivePoolingV1"],
           note=f"Adaptive pooling ({pname}) on {shape}. MegEngine uses stride=floor(in/out), "
                "window=in-(out-1)*stride (not PyTorch's variable windows).")

    # ---- matrix multiplication ----
    for ta in (False, True):
        for tb in (False, True):
            tag = ("t" if ta else "n") + ("t" if tb else "n")

            def inputs(rs, ta=ta, tb=tb):
                a = rs.normal(0, 1, (3, 4)).astype("float32")
                b = rs.normal(0, 1, (4, 5)).astype("float32")
                return [("a", f32(a.T if ta else a)), ("b", f32(b.T if tb else b))]

            op(f"op_matmul_{tag}", lambda a, b, ta=ta, tb=tb: F.matmul(a, b, transpose_a=ta, transpose_b=tb),
               inputs, expect_ops=["MatrixMulV2"], note=f"2-D matmul transpose_a={ta} transpose_b={tb}.")
    op("op_matmul_const_weight", lambda a: F.matmul(a, mge.tensor(np.linspace(-1, 1, 20, dtype="float32")
                                                                  .reshape(4, 5))),
       _x(3, 4, name="a"), expect_ops=["MatrixMulV2"], note="2-D matmul with a constant right operand.")
    def linear_builder():
        rs = rng("op_linear")
        m = M.Linear(6, 4)
        init_params(m, rs)
        return module_spec(m, [("x", f32(rs.normal(0, 1, (3, 6))))], output_names=["out"],
                           expect_ops=["MatrixMulV2"], note="M.Linear: MatrixMul(x, W, transposeB) + bias ADD.")

    register("op_linear", linear_builder)

    for tag, (sa, sb, ta, tb) in {
        "3d": ((2, 3, 4), (2, 4, 5), False, False),
        "3d_ta": ((2, 4, 3), (2, 4, 5), True, False),
        "3d_tb": ((2, 3, 4), (2, 5, 4), False, True),
        "3d_tatb": ((2, 4, 3), (2, 5, 4), True, True),
        "4d": ((2, 2, 3, 4), (2, 2, 4, 5), False, False),
        "bcast": ((3, 3, 4), (4, 5), False, False),
    }.items():
        op(f"op_batched_matmul_{tag}", lambda a, b, ta=ta, tb=tb: F.matmul(a, b, transpose_a=ta, transpose_b=tb),
           lambda rs, sa=sa, sb=sb: [("a", f32(rs.normal(0, 1, sa))), ("b", f32(rs.normal(0, 1, sb)))],
           note=f"F.matmul {sa} @ {sb} transpose_a={ta} transpose_b={tb}.")

    # ---- Reduce ----
    red = {
        "sum_axis1": lambda x: F.sum(x, axis=1),
        "sum_keepdims": lambda x: F.sum(x, axis=2, keepdims=True),
        "sum_negaxis": lambda x: F.sum(x, axis=-1),
        "sum_all": lambda x: F.sum(x),
        "mean_axis0": lambda x: F.mean(x, axis=0),
        "mean_all": lambda x: F.mean(x),
        "max_axis1": lambda x: F.max(x, axis=1),
        "max_all": lambda x: F.max(x),
        "min_axis2_keepdims": lambda x: F.min(x, axis=2, keepdims=True),
        "min_all": lambda x: F.min(x),
        "prod_axis1": lambda x: F.prod(x, axis=1),
        "prod_all": lambda x: F.prod(x * 0.5 + 1.0),
        "sum_sqr_axis1": lambda x: _raw_reduce(x, "SUM_SQR", 1),
        "mean_multi_axes": lambda x: F.mean(x, axis=[1, 2]),
    }
    for rname, fn in red.items():
        op(f"op_reduce_{rname}", fn, _x(2, 3, 4), expect_ops=["ReduceV2"],
           note=f"Reduce {rname} on (2,3,4); reductions to a scalar come out with shape (1,).")

    # ---- Softmax / LayerNorm ----
    op("op_softmax_lastaxis", lambda x: F.softmax(x, axis=-1), _x(2, 3, 5, scale=2), expect_ops=["Softmax"],
       note="Softmax over the last axis.")
    op("op_softmax_axis1", lambda x: F.softmax(x, axis=1), _x(2, 4, 3, 3, scale=2), expect_ops=["Softmax"],
       note="Softmax over axis 1 of a 4-D tensor.")
    op("op_logsoftmax", lambda x: F.logsoftmax(x, axis=1), _x(3, 6, scale=2), note="F.logsoftmax (decomposed).")

    def layernorm_builder(name, affine, shape, nshape):
        def builder():
            rs = rng(name)
            if affine:
                m = M.LayerNorm(nshape)
                init_params(m, rs)
                m.eval()
                fn = m
            else:
                def fn(x):
                    return F.layer_norm(x, nshape, affine=False, eps=1e-5)
            return Spec(fn, [("x", f32(rs.normal(0.5, 2, shape)))], output_names=["out"],
                        expect_ops=["LayerNorm"],
                        note=f"LayerNorm over {nshape} of {shape}, affine={affine}.")

        register(name, builder)

    layernorm_builder("op_layernorm_affine", True, (2, 5, 8), 8)
    layernorm_builder("op_layernorm_noaffine", False, (2, 5, 8), 8)
    layernorm_builder("op_layernorm_2d", True, (2, 3, 4, 5), (4, 5))


def _raw_reduce(x, mode, axis):
    from megengine.core._imperative_rt.core2 import apply
    from megengine.core.ops import builtin

    return apply(builtin.Reduce(mode=mode, axis=axis), x)[0]


def _register_shape_ops():
    idx_gen = lambda rs, hi, shape: rs.randint(0, hi, shape).astype("int32")  # noqa: E731

    op("op_concat_axis1", lambda a, b, c: F.concat([a, b, c], axis=1),
       lambda rs: [("a", f32(rs.normal(0, 1, (2, 1, 3)))), ("b", f32(rs.normal(0, 1, (2, 2, 3)))),
                   ("c", f32(rs.normal(0, 1, (2, 3, 3))))], expect_ops=["Concat"], note="Concat of 3 inputs, axis 1.")
    op("op_concat_negaxis", lambda a, b: F.concat([a, b], axis=-1),
       lambda rs: [("a", f32(rs.normal(0, 1, (2, 3, 2)))), ("b", f32(rs.normal(0, 1, (2, 3, 4))))],
       expect_ops=["Concat"], note="Concat axis -1.")
    op("op_split_equal", lambda x: F.split(x, 3, axis=1), _x(2, 6, 2), expect_ops=["Split"],
       note="F.split into 3 equal parts along axis 1 (3 outputs).")
    op("op_split_sections", lambda x: F.split(x, [2, 5], axis=-1), _x(2, 3, 7), expect_ops=["Split"],
       note="F.split at [2, 5] along the last axis (sizes 2, 3, 2).")
    op("op_dimshuffle", lambda x: F.transpose(x, (0, 2, 3, 1)), _x(2, 3, 4, 5), expect_ops=["Dimshuffle"],
       note="transpose (0,2,3,1).")
    op("op_dimshuffle_addaxis", lambda x: x.transpose(1, "x", 0, 2), _x(2, 3, 4), expect_ops=["Dimshuffle"],
       note="transpose with an inserted axis: pattern (1,'x',0,2).")
    op("op_expand_dims", lambda x: F.expand_dims(x, [0, 3]), _x(3, 4), expect_ops=["AxisAddRemove"],
       note="F.expand_dims at axes [0, 3].")
    op("op_squeeze", lambda x: F.squeeze(x, [0, 2]), _x(1, 3, 1, 4), expect_ops=["AxisAddRemove"],
       note="F.squeeze axes [0, 2].")
    op("op_squeeze_all", lambda x: F.squeeze(x), _x(1, 1, 5, 1), note="F.squeeze of all size-1 axes.")
    op("op_reshape", lambda x: x.reshape(2, -1, 3), _x(2, 4, 3), expect_ops=["ReshapeV1"],
       note="reshape to (2,-1,3).")
    op("op_reshape_dynamic", lambda x: x.reshape(x.shape[0], -1), _x(3, 2, 4), expect_ops=["ReshapeV1"],
       note="reshape using the input's own shape (GetVarShape/Subtensor/Concat shape arithmetic).")
    op("op_flatten", lambda x: F.flatten(x, 1), _x(2, 3, 2, 2), note="F.flatten(x, 1).")
    op("op_broadcast", lambda x: F.broadcast_to(x, (2, 3, 4)), _x(3, 1), expect_ops=["Broadcast"],
       note="broadcast_to (3,1) -> (2,3,4).")
    op("op_subtensor_slices", lambda x: x[1:-1:2, ::-1, 2], _x(6, 4, 5), expect_ops=["Subtensor"],
       note="x[1:-1:2, ::-1, 2]: negative bounds, negative step, integer index.")
    op("op_subtensor_index_last", lambda x: x[-1], _x(3, 4), expect_ops=["Subtensor"], note="x[-1].")
    op("op_subtensor_ellipsis_step", lambda x: x[..., ::-2], _x(2, 3, 5), expect_ops=["Subtensor"],
       note="x[..., ::-2].")
    op("op_subtensor_negstep_bounds", lambda x: x[:, -2:0:-1, 1:], _x(2, 6, 4), expect_ops=["Subtensor"],
       note="x[:, -2:0:-1, 1:].")
    op("op_indexing_vec", lambda x, i: x[i], lambda rs: [("x", f32(rs.normal(0, 1, (5, 3)))),
                                                         ("i", idx_gen(rs, 5, (4,)))],
       expect_ops=["IndexingMultiAxisVec"], note="x[i] with an int32 index vector input.")
    op("op_indexing_vec_axis1_slice", lambda x, i: x[:, i, 1:3],
       lambda rs: [("x", f32(rs.normal(0, 1, (4, 5, 4)))), ("i", idx_gen(rs, 5, (3,)))],
       expect_ops=["IndexingMultiAxisVec"], note="x[:, i, 1:3] (advanced index mixed with slices).")
    op("op_indexing_vec_two", lambda x, i, j: x[i, :, j],
       lambda rs: [("x", f32(rs.normal(0, 1, (4, 3, 5)))), ("i", idx_gen(rs, 4, (2,))),
                   ("j", idx_gen(rs, 5, (2,)))],
       expect_ops=["IndexingMultiAxisVec"], note="x[i, :, j] (two index vectors broadcast together).")
    op("op_indexing_const_vec", lambda x: x[:, [2, 0, 1]], _x(2, 3, 2), note="x[:, [2, 0, 1]] constant index.")
    op("op_gather", lambda x, i: F.gather(x, 1, i),
       lambda rs: [("x", f32(rs.normal(0, 1, (3, 4)))), ("i", idx_gen(rs, 4, (3, 2)))],
       note="F.gather(x, 1, index).")
    op("op_indexing_one_hot", lambda x, i: F.indexing_one_hot(x, i, axis=1),
       lambda rs: [("x", f32(rs.normal(0, 1, (3, 5, 2)))), ("i", idx_gen(rs, 5, (3, 2)))],
       expect_ops=["IndexingOneHot"], note="F.indexing_one_hot(x, i, axis=1).")
    op("op_indexing_one_hot_keepdims", lambda x, i: F.indexing_one_hot(x, i, axis=1, keepdims=True),
       lambda rs: [("x", f32(rs.normal(0, 1, (4, 6)))), ("i", idx_gen(rs, 6, (4,)))],
       expect_ops=["IndexingOneHot"], note="F.indexing_one_hot(..., keepdims=True).")
    op("op_one_hot", lambda i: F.one_hot(i, 5), lambda rs: [("i", idx_gen(rs, 5, (2, 3)))],
       expect_ops=["IndexingSetOneHot"], note="F.one_hot(i, 5): IndexingSetOneHot into zeros (int32 output).")
    op("op_one_hot_float", lambda i: F.one_hot(i, 4).astype("float32") * 2.0,
       lambda rs: [("i", idx_gen(rs, 4, (5,)))], expect_ops=["IndexingSetOneHot"],
       note="F.one_hot then astype float32.")

    # ---- TypeCvt ----
    op("op_typecvt_f2i", lambda x: x.astype("int32"), _x(4, 5, scale=4), expect_ops=["TypeCvtV2"],
       note="float32 -> int32 (truncation toward zero, negatives included).")
    op("op_typecvt_i2f", lambda x: x.astype("float32") * 0.5, lambda rs: [("x", idx_gen(rs, 100, (3, 4)) - 50)],
       expect_ops=["TypeCvtV2"], note="int32 -> float32.")
    op("op_typecvt_bool", lambda x: x.astype("bool").astype("int32"), lambda rs: [("x", _with_zeros()(rs))],
       expect_ops=["TypeCvtV2"], note="float32 -> bool (nonzero) -> int32.")
    op("op_typecvt_f2u8", lambda x: x.astype("uint8"), lambda rs: [("x", f32(rs.uniform(0, 255, (3, 4))))],
       expect_ops=["TypeCvtV2"], note="float32 in [0,255) -> uint8 (uint8 output).")
    op("op_typecvt_f2i16", lambda x: x.astype("int16"), _x(3, 4, scale=100), expect_ops=["TypeCvtV2"],
       note="float32 -> int16 (int16 output).")
    op("op_typecvt_f2i8", lambda x: x.astype("int8"), _x(3, 4, scale=30), expect_ops=["TypeCvtV2"],
       note="float32 -> int8 (int8 output).")
    op("op_typecvt_u8_in", lambda x: x.astype("float32") / 255.0,
       lambda rs: [("x", rs.randint(0, 256, (2, 5)).astype("uint8"))], expect_ops=["TypeCvtV2"],
       note="uint8 input -> float32.")
    op("op_typecvt_i16_in", lambda x: x.astype("float32") * 0.25,
       lambda rs: [("x", rs.randint(-3000, 3000, (2, 5)).astype("int16"))], expect_ops=["TypeCvtV2"],
       note="int16 input -> float32.")
    op("op_typecvt_i8_in", lambda x: x.astype("float32") * 0.25,
       lambda rs: [("x", rs.randint(-128, 128, (2, 5)).astype("int8"))], expect_ops=["TypeCvtV2"],
       note="int8 input -> float32.")

    # ---- PowC ----
    for pname, e in {"cube": 3, "sqrt": 0.5, "recip": -1, "frac": 2.5, "square": 2, "rsqrt": -0.5}.items():
        op(f"op_powc_{pname}", lambda x, e=e: x ** e, lambda rs: [("x", f32(rs.uniform(0.2, 3, (3, 4))))],
           note=f"x ** {e} with a constant exponent (PowC or an equivalent rewrite).")
    op("op_powc_neg_base_int_exp", lambda x: x ** 3, _x(3, 4), note="x ** 3 with negative bases.")


def _register_misc_ops():
    idx_gen = lambda rs, hi, shape: rs.randint(0, hi, shape).astype("int32")  # noqa: E731

    def distinct(*shape):
        # values without ties (sort / top-k / arg-max results are then unambiguous)
        return lambda rs: [("x", f32(rs.permutation(int(np.prod(shape))).reshape(shape) * 0.25 - 3.0))]

    # ---- selection / sorting ----
    op("op_argmax", lambda x: F.argmax(x, axis=1), distinct(3, 5, 2), expect_ops=["Argmax"],
       note="F.argmax axis 1 (int32 output).")
    op("op_argmax_keepdims", lambda x: F.argmax(x, axis=-1, keepdims=True), distinct(3, 4), expect_ops=["Argmax"],
       note="F.argmax axis -1 keepdims.")
    op("op_argmin", lambda x: F.argmin(x, axis=0), distinct(4, 3), expect_ops=["Argmin"],
       note="F.argmin axis 0 (int32 output).")
    op("op_argmax_all", lambda x: F.argmax(x), distinct(3, 4), note="F.argmax over the flattened tensor.")
    op("op_topk_desc", lambda x: F.topk(x, 3, descending=True), distinct(3, 7), expect_ops=["TopK"],
       note="F.topk k=3 largest, sorted (values, int32 indices).")
    op("op_topk_asc", lambda x: F.topk(x, 2, descending=False), distinct(2, 6), expect_ops=["TopK"],
       note="F.topk k=2 smallest, sorted.")
    op("op_topk_kth_only", lambda x: F.topk(x, 3, kth_only=True), distinct(3, 6), expect_ops=["TopK"],
       note="F.topk kth_only (KTH_ONLY mode): the 3rd smallest value per row.")
    op("op_topk_nosort", lambda x: F.topk(x, 3, descending=True, no_sort=True), distinct(2, 6),
       expect_ops=["TopK"], note="F.topk no_sort (VALUE_IDX_NOSORT): the order of the k results is unspecified; "
                                 "compare after sorting each row.")
    op("op_argsort_asc", lambda x: F.argsort(x), distinct(3, 5), expect_ops=["Argsort"],
       note="F.argsort ascending (int32 indices).")
    op("op_argsort_desc", lambda x: F.argsort(x, descending=True), distinct(2, 6), expect_ops=["Argsort"],
       note="F.argsort descending.")
    op("op_sort", lambda x: F.sort(x, descending=True), distinct(3, 4), expect_ops=["Argsort"],
       note="F.sort descending (values and indices).")
    op("op_cumsum", lambda x: F.cumsum(x, axis=1), _x(2, 5, 3), expect_ops=["CumsumV1"], note="F.cumsum axis 1.")
    op("op_cumsum_lastaxis", lambda x: F.cumsum(x, axis=-1), _x(3, 4), expect_ops=["CumsumV1"],
       note="F.cumsum axis -1.")

    # ---- padding ----
    op("op_pad_constant", lambda x: F.pad(x, ((0, 0), (0, 0), (1, 2), (2, 1)), constant_value=0.5),
       _x(1, 2, 3, 4), expect_ops=["Padding"], note="F.pad constant 0.5, asymmetric pads on H and W.")
    op("op_pad_reflect", lambda x: F.pad(x, ((0, 0), (1, 1), (2, 2)), mode="reflect"), _x(2, 4, 5),
       expect_ops=["Padding"], note="F.pad reflect.")
    op("op_pad_edge", lambda x: F.pad(x, ((1, 0), (0, 2)), mode="edge"), _x(3, 4), expect_ops=["Padding"],
       note="F.pad edge (REPLICATE).")

    # ---- resize / warp ----
    for rname, (fn, shape, expect) in {
        "bilinear_up": (lambda x: F.vision.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False),
                        (1, 2, 4, 5), "ResizeV2"),
        "bilinear_down": (lambda x: F.vision.interpolate(x, size=(3, 4), mode="bilinear", align_corners=False),
                          (1, 2, 8, 9), "ResizeV2"),
        "bilinear_scale2": (lambda x: F.vision.interpolate(x, scale_factor=2.0, mode="bilinear",
                                                           align_corners=False), (1, 3, 4, 4), "ResizeV2"),
        "nearest_up": (lambda x: F.vision.interpolate(x, size=(6, 10), mode="nearest"), (1, 2, 3, 4), "ResizeV2"),
        "nearest_down": (lambda x: F.vision.interpolate(x, size=(3, 2), mode="nearest"), (1, 2, 7, 5),
                         "ResizeV2"),
        "bicubic": (lambda x: F.vision.interpolate(x, size=(6, 7), mode="bicubic"), (1, 2, 4, 5), "ResizeV2"),
        "bilinear_align_corners": (lambda x: F.vision.interpolate(x, size=(7, 9), mode="bilinear",
                                                                  align_corners=True), (1, 2, 4, 5),
                                   "WarpPerspectiveV2"),
    }.items():
        op(f"op_resize_{rname}", fn, _x(*shape), expect_ops=[expect],
           note=f"F.vision.interpolate ({rname}) on {shape}.")
    op("op_resize_linear1d", lambda x: F.vision.interpolate(x, size=7, mode="linear"), _x(1, 2, 4),
       note="F.vision.interpolate mode='linear' on a 3-D tensor.")

    def warp_mats(rs, n):
        mats = []
        for _ in range(n):
            m = np.eye(3) + rs.normal(0, 0.05, (3, 3))
            m[0, 2], m[1, 2] = rs.uniform(-1, 1, 2)
            m[2, :2] = rs.normal(0, 0.01, 2)
            mats.append(m)
        return f32(mats)

    op("op_warp_perspective", lambda x, m: F.warp_perspective(x, m, (5, 6)),
       lambda rs: [("x", f32(rs.normal(0, 1, (2, 2, 6, 7)))), ("m", warp_mats(rs, 2))],
       expect_ops=["WarpPerspectiveV2"], note="F.warp_perspective, matrices as an input, replicate border.")
    op("op_warp_perspective_constant", lambda x, m: F.warp_perspective(x, m, (6, 6), border_mode="constant",
                                                                       border_val=0.25),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 2, 5, 5)))), ("m", warp_mats(rs, 1) * np.float32(1.3))],
       expect_ops=["WarpPerspectiveV2"], note="F.warp_perspective with a constant border (0.25).")
    op("op_warp_perspective_nearest", lambda x, m: F.warp_perspective(x, m, (4, 5), interp_mode="nearest"),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 1, 6, 6)))), ("m", warp_mats(rs, 1))],
       expect_ops=["WarpPerspectiveV2"], note="F.warp_perspective nearest interpolation.")
    op("op_warp_affine", lambda x, m: F.warp_affine(x, m, (5, 6), format="NCHW"),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 2, 6, 7)))), ("m", warp_mats(rs, 1)[:, :2, :])],
       note="F.warp_affine (NCHW).")
    op("op_remap", lambda x, mp: F.remap(x, mp),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 2, 5, 5)))), ("mp", f32(rs.uniform(-0.5, 4.5, (1, 4, 3, 2))))],
       note="F.remap with a float map (N,H,W,2).")

    # ---- normalisation ----
    def norm_builder(name, kind, affine, ncg):
        def builder():
            rs = rng(name)
            if kind == "group":
                m = M.GroupNorm(2, 6, affine=affine)
            else:
                m = M.InstanceNorm(6, affine=affine)
            init_params(m, rs)
            m.eval()
            return Spec(m, [("x", f32(rs.normal(0.3, 2, (2, 6, 4, 5))))], output_names=["out"],
                        dump={"no_change_graph": True} if ncg else {},
                        expect_ops=[{"group": "GroupNorm", "instance": "InstanceNorm"}[kind]] if ncg else [],
                        note=f"{kind} norm (C=6{', 2 groups' if kind == 'group' else ''}), affine={affine}"
                             + (", dumped with no_change_graph=True (the op stays)" if ncg
                                else ", default dump (decomposed into primitive ops)") + ".")

        register(name, builder)

    for kind in ("group", "instance"):
        for affine in (True, False):
            for ncg in (False, True):
                norm_builder(f"op_{kind}norm{'_affine' if affine else ''}{'_raw' if ncg else ''}", kind, affine, ncg)

    def lrn_builder():
        m = M.LocalResponseNorm(kernel_size=3, k=2.0, alpha=1e-2, beta=0.75)
        rs = rng("op_lrn")
        return module_spec(m, [("x", f32(rs.normal(0, 2, (1, 6, 4, 4))))], output_names=["out"],
                           expect_ops=["LRN"], note="LocalResponseNorm n=3, k=2, alpha=1e-2, beta=0.75.")

    register("op_lrn", lrn_builder)

    def bn_builder(name, opt):
        def builder():
            rs = rng(name)
            m = M.BatchNorm2d(4)
            init_params(m, rs)
            m.running_mean._reset(mge.tensor(f32(rs.normal(0, 0.5, (1, 4, 1, 1)))))
            m.running_var._reset(mge.tensor(f32(rs.uniform(0.5, 2.0, (1, 4, 1, 1)))))
            return module_spec(m, [("x", f32(rs.normal(0, 1.5, (2, 4, 3, 3))))], output_names=["out"],
                               dump={} if opt else {"optimize_for_inference": False},
                               expect_ops=[] if opt else ["BatchNormV1"],
                               note="BatchNorm2d in eval mode with random running stats, "
                                    + ("default dump (folded into Elemwise)." if opt else
                                       "dumped with optimize_for_inference=False (BatchNormV1 stays; y is its "
                                       "last output)."))

        register(name, builder)

    bn_builder("op_batchnorm_noopt", False)
    bn_builder("op_batchnorm", True)

    # ---- lowered forms of common functional APIs ----
    op("op_where", lambda c, a, b: F.where(c > 0, a, b),
       lambda rs: [("c", f32(rs.normal(0, 1, (3, 4)))), ("a", f32(rs.normal(0, 1, (3, 4)))),
                   ("b", f32(rs.normal(0, 1, (3, 4))))], note="F.where(c > 0, a, b).")
    op("op_leaky_relu", lambda x: F.leaky_relu(x, 0.1), _x(3, 5, scale=2), note="F.leaky_relu(x, 0.1).")
    op("op_stack", lambda a, b: F.stack([a, b], axis=1),
       lambda rs: [("a", f32(rs.normal(0, 1, (2, 3)))), ("b", f32(rs.normal(0, 1, (2, 3))))],
       note="F.stack axis 1.")
    op("op_repeat", lambda x: F.repeat(x, 2, axis=1), _x(2, 3), note="F.repeat(x, 2, axis=1).")
    op("op_tile", lambda x: F.tile(x, (2, 3)), _x(2, 2), note="F.tile(x, (2, 3)).")
    op("op_pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), _x(1, 8, 2, 3), note="F.pixel_shuffle(x, 2).")
    op("op_roll", lambda x: F.roll(x, 2, axis=1), _x(2, 5), note="F.roll(x, 2, axis=1).")
    op("op_arange_add", lambda x: x + F.arange(x.shape[1]).astype("float32"), _x(2, 5),
       note="x + arange(x.shape[1]) (a shape-dependent arange).")
    op("op_linspace_const", lambda x: x * F.linspace(0.0, 1.0, 6), _x(2, 6), note="x * linspace(0, 1, 6).")
    op("op_full_like", lambda x: F.full_like(x, 1.5) + x, _x(2, 3), note="F.full_like(x, 1.5) + x.")
    op("op_zeros_like_shape", lambda x: F.zeros((x.shape[0], 2)) + x[:, :2], _x(3, 4),
       note="F.zeros with a shape taken from the input.")
    op("op_shape_output", lambda x: x.shape.astype("int32") if hasattr(x.shape, "astype") else x.shape,
       _x(2, 3, 4), note="The input's shape as an int32 output (GetVarShape).")
    op("op_clip_const", lambda x: F.clip(x, -0.5, 0.8), _x(3, 4, scale=2),
       note="F.clip with constant bounds, default dump. MegEngine 1.13 bug: the compatibility rewrite becomes "
            "MIN(lower, MAX(x, lower)), so the reference is the constant -0.5.")
    op("op_clip_const_raw", lambda x: F.clip(x, -0.5, 0.8), _x(3, 4, scale=2), dump={"no_change_graph": True},
       expect_modes=["CLIP"], note="F.clip with constant bounds, dumped with no_change_graph=True.")
    op("op_sign_func", lambda x: F.sign(x), lambda rs: [("x", _with_zeros()(rs))],
       note="F.sign (default dump; see op_elemwise_sign about the -sign(x) rewrite).")
    op("op_logsumexp", lambda x: F.logsumexp(x, axis=1), _x(3, 5, scale=3), note="F.logsumexp axis 1.")
    op("op_normalize", lambda x: F.normalize(x, axis=1), _x(3, 4), note="F.normalize axis 1 (L2).")
    op("op_norm_l2", lambda x: F.norm(x, ord=2, axis=1), _x(3, 4), note="F.norm ord 2 axis 1.")
    op("op_var", lambda x: F.var(x, axis=1), _x(3, 5), note="F.var axis 1.")
    op("op_std", lambda x: F.std(x, axis=1), _x(3, 5), note="F.std axis 1.")
    op("op_dot", lambda a, b: F.dot(a, b), lambda rs: [("a", f32(rs.normal(0, 1, (6,)))),
                                                       ("b", f32(rs.normal(0, 1, (6,))))], note="F.dot of vectors.")
    op("op_diag", lambda x: F.diag(x), _x(4), note="F.diag of a vector.")
    op("op_eye_add", lambda x: x + F.eye(3), _x(3, 3), note="x + eye(3).")
    op("op_matinv", lambda x: F.matinv(x + mge.tensor(np.eye(3, dtype="float32") * 4)), _x(2, 3, 3),
       note="F.matinv of well-conditioned matrices.", rtol=1e-3, atol=1e-5)
    op("op_swapaxes", lambda x: F.swapaxes(x, 0, 2), _x(2, 3, 4), note="F.swapaxes(x, 0, 2).")
    op("op_meshgrid", lambda a, b: F.stack(F.meshgrid(a, b), 0),
       lambda rs: [("a", f32(rs.normal(0, 1, (3,)))), ("b", f32(rs.normal(0, 1, (4,))))], note="F.meshgrid.")
    op("op_embedding", lambda i: F.embedding(i, mge.tensor(np.arange(20, dtype="float32").reshape(5, 4))),
       lambda rs: [("i", idx_gen(rs, 5, (2, 3)))], note="F.embedding with a constant table.")
    op("op_scatter", lambda x, i, s: F.scatter(x, 1, i, s),
       lambda rs: [("x", f32(rs.normal(0, 1, (3, 5)))),
                   ("i", np.stack([rs.permutation(5)[:2] for _ in range(3)]).astype("int32")),
                   ("s", f32(rs.normal(0, 1, (3, 2))))], note="F.scatter(x, 1, index, source).")
    op("op_cond_take", lambda x: F.cond_take(x > 0, x)[0], _x(3, 4), note="F.cond_take (data-dependent shape).")
    op("op_nms", lambda b, s: F.vision.nms(b, s, 0.5, max_output=4),
       lambda rs: [("b", f32(np.sort(rs.uniform(0, 10, (6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4))),
                   ("s", f32(rs.uniform(0, 1, (6,))))], note="F.vision.nms.")
    op("op_roi_align", lambda x, r: F.vision.roi_align(x, r, (2, 2)),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 2, 6, 6)))),
                   ("r", f32([[0, 0.5, 0.5, 4.0, 4.5], [0, 1.0, 2.0, 5.0, 5.0]]))], note="F.vision.roi_align.")
    op("op_roi_pooling", lambda x, r: F.vision.roi_pooling(x, r, (2, 2)),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 2, 6, 6)))),
                   ("r", f32([[0, 0, 0, 4, 4], [0, 1, 2, 5, 5]]))], note="F.vision.roi_pooling.")
    op("op_correlation", lambda a, b: F.vision.correlation(a, b, kernel_size=1, max_displacement=1, pad_size=1),
       lambda rs: [("a", f32(rs.normal(0, 1, (1, 2, 4, 4)))), ("b", f32(rs.normal(0, 1, (1, 2, 4, 4))))],
       note="F.vision.correlation.")
    op("op_cvt_color", lambda x: F.vision.cvt_color(x, "RGB2GRAY"),
       lambda rs: [("x", f32(rs.uniform(0, 1, (1, 4, 4, 3))))],
       note="F.vision.cvt_color RGB2GRAY (NHWC).")
    op("op_sliding_window", lambda x: F.sliding_window(x, 2, stride=1), _x(1, 2, 3, 4),
       note="F.sliding_window (Images2Neibs).")
    op("op_conv1d", lambda x: F.conv1d(x, mge.tensor(np.linspace(-1, 1, 18, dtype="float32").reshape(3, 2, 3)),
                                       padding=1), _x(1, 2, 6), note="F.conv1d (Convolution on a reshaped tensor).")
    op("op_conv3d", lambda x: F.conv3d(x, mge.tensor(np.linspace(-1, 1, 54, dtype="float32").reshape(2, 1, 3, 3, 3)),
                                       padding=1), _x(1, 1, 3, 4, 4), note="F.conv3d.")
    op("op_deformable_conv2d", lambda x, off, msk: F.deformable_conv2d(
        x, mge.tensor(np.linspace(-1, 1, 2 * 2 * 9, dtype="float32").reshape(2, 2, 3, 3)), off, msk, padding=1),
       lambda rs: [("x", f32(rs.normal(0, 1, (1, 2, 4, 4)))), ("off", f32(rs.normal(0, 0.5, (1, 18, 4, 4)))),
                   ("msk", f32(rs.uniform(0, 1, (1, 9, 4, 4))))], note="F.deformable_conv2d.")
    op("op_svd", lambda x: F.svd(x, full_matrices=False, compute_uv=True)[1], _x(3, 3),
       note="F.svd, only the singular values are output (U/V signs are ambiguous).")


def _register_more_modules():
    def prelu_builder():
        rs = rng("op_prelu_module")
        m = M.PReLU(num_parameters=3, init=0.2)
        m.weight._reset(mge.tensor(f32(rs.uniform(0.05, 0.5, m.weight.shape))))
        return module_spec(m, [("x", f32(rs.normal(0, 2, (1, 3, 2, 2))))], output_names=["out"],
                           note="M.PReLU with per-channel slopes.")

    register("op_prelu_module", prelu_builder)

    def dropout_builder():
        m = M.Sequential(M.Dropout(0.5), M.ReLU())
        return module_spec(m, [("x", f32(rng("op_dropout_eval").normal(0, 1, (2, 5))))], output_names=["out"],
                           note="M.Dropout in eval mode disappears; only relu remains.")

    register("op_dropout_eval", dropout_builder)

    def mha_builder():
        rs = rng("op_multihead_attention")
        m = M.MultiHeadAttention(8, 2, bias=True)
        init_params(m, rs)
        m.eval()

        def fn(x):
            return m(x, x, x, need_weights=False)[0]

        return Spec(fn, [("x", f32(rs.normal(0, 1, (4, 2, 8))))], output_names=["out"],
                    note="M.MultiHeadAttention (seq 4, batch 2, embed 8, 2 heads).")

    register("op_multihead_attention", mha_builder)

    def lstm_builder():
        rs = rng("op_lstm")
        m = M.LSTM(4, 5, num_layers=1)
        init_params(m, rs)
        m.eval()

        def fn(x):
            return m(x)[0]

        return Spec(fn, [("x", f32(rs.normal(0, 1, (3, 2, 4))))], output_names=["out"], note="M.LSTM one layer.")

    register("op_lstm", lstm_builder)

    def local_conv_builder():
        rs = rng("op_local_conv2d")
        m = M.LocalConv2d(2, 3, 4, 4, 3, padding=0)
        m.weight._reset(mge.tensor(f32(rs.normal(0, 0.3, m.weight.shape))))
        if getattr(m, "bias", None) is not None:
            m.bias._reset(mge.tensor(f32(rs.normal(0, 0.1, m.bias.shape))))
        return module_spec(m, [("x", f32(rs.normal(0, 1, (1, 2, 4, 4))))], output_names=["out"],
                           note="M.LocalConv2d (GroupLocal: unshared weights per output position).")

    register("op_local_conv2d", local_conv_builder)


_register_nn_ops()
_register_shape_ops()
_register_misc_ops()
_register_more_modules()


# ---------------------------------------------------------------------------------------------------------------
# Dump formats and dump options (category "model": a small CNN dumped in different ways)
# ---------------------------------------------------------------------------------------------------------------


class TinyCNN(M.Module):
    def __init__(self, maxpool=True):
        super().__init__()
        self.maxpool = maxpool
        self.conv1 = M.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = M.BatchNorm2d(8)
        self.conv2 = M.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False)
        self.bn2 = M.BatchNorm2d(8)
        self.conv3 = M.Conv2d(8, 12, 1)
        self.fc = M.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2, 2) if self.maxpool else x[:, :, ::2, ::2]
        x = F.hswish(self.bn2(self.conv2(x)))
        x = F.relu(self.conv3(x))
        x = F.mean(x, axis=[2, 3])
        return F.softmax(self.fc(x), axis=1)


class TinyConvNet(M.Module):
    """Convolution-only net (a fully convolutional output) for the layout-transform dump options."""

    def __init__(self):
        super().__init__()
        self.conv1 = M.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = M.BatchNorm2d(8)
        self.conv2 = M.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False)
        self.bn2 = M.BatchNorm2d(8)
        self.conv3 = M.Conv2d(8, 12, 1)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2, 2)
        x = F.hswish(self.bn2(self.conv2(x)))
        return F.relu(self.conv3(x))


def _tiny_convnet(name):
    rs = rng(name)
    model = TinyConvNet()
    init_params(model, rs)
    calibrate_bn(model, rs.uniform(0, 1, (4, 3, 16, 16)).astype("float32"))
    data = np.random.RandomState(7).uniform(0, 1, (1, 3, 16, 16)).astype("float32")
    return model, data


def _tiny_cnn(name, maxpool=True):
    rs = rng(name)
    model = TinyCNN(maxpool)
    init_params(model, rs, linear_gain=3.0)
    calibrate_bn(model, rs.uniform(0, 1, (4, 3, 16, 16)).astype("float32"))
    data = np.random.RandomState(7).uniform(0, 1, (1, 3, 16, 16)).astype("float32")
    return model, data


def _register_formats():
    variants = {
        # name: (dump kwargs, note, output names, timeout)
        "format_fbs_v1": ({"dump_format": "FBS"}, "V1 format: MGBC header + blobs + mgb1 FlatBuffer (operators "
                                                  "identified only by type-id hashes).", ["prob"]),
        "format_model_version1": ({"model_version": 1}, "FBS_V2 container with model_version=1: operators use their "
                                                        "V1 registry names (ConvolutionV2, ...).", ["prob"]),
        "format_default_names": ({}, "Default dump, no output_names (the output keeps MegEngine's var name).", None),
        "format_keep_var_name0": ({"keep_var_name": 0}, "keep_var_name=0: no middle_tensors, so var names are "
                                                        "not stored.", ["prob"]),
        "format_keep_names": ({"keep_opr_name": True, "keep_param_name": True, "keep_var_name": 2},
                              "keep_opr_name/keep_param_name/keep_var_name=2.", ["prob"]),
        "format_no_metadata": ({"enable_metadata": False}, "enable_metadata=False (no Metadata table).", ["prob"]),
        "format_user_info": ({"user_info": {"author": "fixture", "version": 3}},
                             "user_info stored (pickled) in Metadata.", ["prob"]),
        "format_no_optimize": ({"optimize_for_inference": False}, "optimize_for_inference=False: BatchNormV1, "
                                                                  "separate ADD/RELU etc. stay.", ["prob"]),
        "format_fuse_conv_bias": ({"enable_fuse_conv_bias_nonlinearity": True}, "ConvBias fusion.", ["prob"]),
        "format_io16xc32": ({"enable_io16xc32": True}, "enable_io16xc32: float16 storage with float32 compute "
                                                       "(TypeCvt to/from Float16 inside the graph).", ["prob"]),
        "format_ioc16": ({"enable_ioc16": True}, "enable_ioc16: float16 compute.", ["prob"]),
        "format_f16_nopool_io16xc32": ({"enable_io16xc32": True}, "enable_io16xc32, model without max pooling.",
                                       ["prob"]),
        "format_f16_nopool_ioc16": ({"enable_ioc16": True}, "enable_ioc16, model without max pooling.", ["prob"]),
        "format_nchw44": ({"enable_nchw44": True}, "enable_nchw44 layout transform (ConvBias NCHW44).", ["prob"]),
        "format_nchw88_linear": ({"enable_nchw88": True}, "enable_nchw88 layout transform of a net ending in "
                                                          "mean + linear.", ["prob"]),
        "format_conv_nchw88": ({"enable_nchw88": True}, "enable_nchw88 layout transform (ConvBias NCHW88).",
                               ["feat"]),
        "format_conv_nchw44": ({"enable_nchw44": True}, "enable_nchw44 layout transform (ConvBias NCHW44).",
                               ["feat"]),
        "format_conv_hwcd4": ({"enable_hwcd4": True}, "enable_hwcd4 layout transform (NHWCD4).", ["feat"]),
        "format_conv_chwn4": ({"enable_chwn4": True}, "enable_chwn4 layout transform (CUDA int8 layout).",
                              ["feat"]),
        "format_nchw44_dot": ({"enable_nchw44_dot": True}, "enable_nchw44_dot layout transform.", ["prob"]),
        "format_fuse_grain_off": ({"enable_fuse_grain": False}, "enable_fuse_grain=False.", ["prob"]),
        "format_testcase": ({"input_data": ["#rand(0,1)"]}, "dump(..., input_data=[...]): the mgbtest0 test-case "
                                                            "container for load_and_run.", ["prob"]),
    }
    for vname, (dump, note, outs) in variants.items():
        def builder(vname=vname, dump=dump, note=note, outs=outs):
            if vname.startswith("format_conv_"):
                model, data = _tiny_convnet("format_conv")
                desc = ("TinyConvNet (conv-bn-relu, maxpool, depthwise conv-bn-hswish, 1x1 conv-relu; input "
                        "(1,3,16,16), output (1,12,4,4)). ")
            elif "nopool" in vname:
                model, data = _tiny_cnn("format", maxpool=False)
                desc = ("TinyCNN with x[:, :, ::2, ::2] instead of max pooling (input (1,3,16,16)). ")
            else:
                model, data = _tiny_cnn("format")  # the same weights for every variant
                desc = ("TinyCNN (conv-bn-relu, maxpool, depthwise conv-bn-hswish, 1x1 conv, mean, linear, "
                        "softmax; input (1,3,16,16)). ")
            kw = {}
            if "16" in vname:
                kw = dict(rtol=1e-2, atol=2e-3)
                note += (" Tolerance rtol 1e-2 / atol 2e-3: float16 arithmetic (megengine's float32 result differs "
                         "by ~3e-4).")
            if vname in ("format_io16xc32", "format_ioc16"):
                note += (" KNOWN BAD REFERENCE: in this float16 graph the real lite's max pooling outputs the "
                         "float16 copy of the *input* instead of the pooled activations (seen with io_txt_dump), "
                         "so the reference is far from the float32 result (0.13 abs). Use "
                         "format_f16_nopool_* to check float16 numerics.")
                kw["manifest_extra"] = {"known_bad_reference": "real lite float16 max pooling returns wrong data"}
            return module_spec(model, [("data", data)], output_names=outs, dump=dump, note=desc + note, **kw)

        # the real lite hung in forward() with NCHW88 on the generating machine: do not wait 10 minutes
        register(vname, builder, category="model", timeout=120 if "nchw88" in vname else None)

    def quant_builder():
        from megengine.quantization import ema_fakequant_qconfig, quantize, quantize_qat

        rs = rng("quantized_cnn")

        class QNet(M.Module):
            def __init__(self):
                super().__init__()
                self.quant = M.QuantStub()
                self.conv1 = M.ConvBnRelu2d(3, 8, 3, 1, 1)
                self.conv2 = M.ConvBn2d(8, 8, 3, 1, 1)
                self.add = M.Elemwise("add")
                self.dequant = M.DequantStub()

            def forward(self, x):
                x = self.quant(x)
                y = self.conv1(x)
                y = self.add(self.conv2(y), y)
                return self.dequant(y)

        model = QNet()
        for _, m in model.named_modules():
            if isinstance(m, M.Conv2d):
                init_params(m, rs)
            if isinstance(m, M.BatchNorm2d):
                init_params(m, rs)
        calib = rs.uniform(0, 1, (4, 3, 8, 8)).astype("float32")
        calibrate_bn(model, calib)
        qat = quantize_qat(model, ema_fakequant_qconfig)
        qat.train()
        for _ in range(3):
            qat(mge.tensor(calib))
        qat.eval()
        q = quantize(qat, inplace=False)
        q.eval()
        data = rs.uniform(0, 1, (1, 3, 8, 8)).astype("float32")
        return module_spec(q, [("data", data)], output_names=["out"],
                           rtol=1e-3, atol=2e-2,
                           note="QAT -> quantize: QuantizedS8 weights, ConvBias with a qint8 output dtype, "
                                "ElemwiseMultiType QADD, TypeCvt to/from quantized types. atol 2e-2: an "
                                "independent float re-implementation can land one quantization step away.")

    register("quantized_cnn", quant_builder, category="model")


_register_formats()


# ---------------------------------------------------------------------------------------------------------------
# Quantized models: MegEngine's QAT flow (quantize_qat, calibration, quantize); the outputs are the quantized tensors
# themselves (int8 / uint8 / int32), compared within ``int_atol`` quantization steps
# ---------------------------------------------------------------------------------------------------------------


def _qconfig(kind):
    from megengine.quantization import QConfig, calibration_qconfig, ema_fakequant_qconfig
    from megengine.quantization.fake_quant import FakeQuantize
    from megengine.quantization.observer import ExponentialMovingAverageObserver, MinMaxObserver

    if kind == "ema":
        return ema_fakequant_qconfig
    if kind == "calibration":
        return calibration_qconfig
    if kind == "lowbit":  # qint4 observers: MegEngine 1.13 still dumps QuantizedS8 tensors (4-bit values)
        from megengine.quantization import ema_lowbit_fakequant_qconfig
        return ema_lowbit_fakequant_qconfig
    # asymmetric uint8 activations (Quantized8Asymm), symmetric int8 weights
    from functools import partial
    return QConfig(weight_observer=partial(MinMaxObserver, dtype="qint8_narrow"),
                   act_observer=partial(ExponentialMovingAverageObserver, dtype="quint8", momentum=0.9),
                   weight_fake_quant=partial(FakeQuantize, dtype="qint8_narrow"),
                   act_fake_quant=partial(FakeQuantize, dtype="quint8"))


def quantized_model(model, rs, shape, qconfig="ema", batches=3, input_range=(-1.0, 1.0)):
    """``model`` (a float module with QuantStub) with seeded weights, calibrated BatchNorm, taken through
    quantize_qat, a few random calibration batches, and quantize: the module MegEngine users dump."""
    from megengine.quantization import quantize, quantize_qat

    init_params(model, rs)
    calib = [rs.uniform(*input_range, (4,) + tuple(shape[1:])).astype("float32") for _ in range(batches)]
    if any(isinstance(m, M.BatchNorm2d) for _, m in model.named_modules()):
        calibrate_bn(model, calib[0])
    qat = quantize_qat(model, _qconfig(qconfig))
    qat.train()
    for batch in calib:
        qat(mge.tensor(batch))
    qat.eval()
    q = quantize(qat, inplace=False)
    q.eval()
    return q


class _QWrap(M.Module):
    """QuantStub -> ``body`` (quantized modules and functional ops on quantized tensors) -> DequantStub (the real
    Lite cannot hand out quantized tensors: outputs must be float)."""

    def __init__(self, body, fn=None):
        super().__init__()
        self.quant = M.QuantStub()
        self.body = body
        self.fn = fn
        self.dequant = M.DequantStub()

    def quantized(self, x):
        x = self.quant(x)
        return self.body(x) if self.fn is None else self.fn(self.body, x)

    def forward(self, x):
        return self.dequant(self.quantized(x))


def output_step(model, data) -> float:
    """The scale of the quantized tensor a quantized ``_QWrap`` dequantizes at its output: one step of it."""
    model.eval()
    from megengine.core.tensor.dtype import get_scale

    y = model.quantized(mge.tensor(data))
    return float(get_scale(y.dtype)) if "quantized" in str(y.dtype) or hasattr(y.dtype, "metadata") and \
        y.dtype.metadata else None


def qop(name, body, shape=(1, 4, 8, 8), fn=None, qconfig="ema", expect_ops=(), category="op", dump=None, note="",
        input_range=(-1.0, 1.0)):
    """Register a quantized fixture: ``body()`` builds the float module, ``fn(body, x)`` (optional) the forward.
    The tolerance is one quantization step of the output."""

    def builder():
        rs = rng(name)
        q = quantized_model(_QWrap(body(), fn), rs, shape, qconfig, input_range=input_range)
        data = rs.uniform(*input_range, shape).astype("float32")
        step = output_step(q, data)  # None: the op gives a float result
        return module_spec(q, [("data", data)], output_names=["out"], expect_ops=expect_ops, dump=dump,
                           rtol=0.0 if step else DEFAULT_RTOL, atol=float(np.float32(step * 1.001)) if step else 1e-4,
                           note=f"quantized ({qconfig} qconfig): {note} atol: one quantization step of the output.",
                           manifest_extra={"quant_step": step})

    register(name, builder, category=category)


def _qdtype(name, *args):
    from megengine.core.tensor import dtype

    return getattr(dtype, name)(*args)


def _raw_multi_type(mode, out, *xs):
    from megengine.core._imperative_rt.core2 import apply
    from megengine.core.ops import builtin

    return apply(builtin.ElemwiseMultiType(mode=mode, dtype=out), *xs)[0]


def _register_rounding_shift():
    """ElemwiseMultiType's integer rounding-shift modes (only reachable through the raw op; traced, since MegEngine
    1.13's eager kernel for them returns its input unchanged)."""

    def ties(rs):  # every residue of a shift by 3, ties included, and values that saturate
        x = np.concatenate([np.arange(-40, 41), rs.randint(-5000, 5000, 40), [-2**31, 2**31 - 1]]).astype(np.int32)
        return x

    for mode, out in (("ROUND_SHR_SATURATE_IXxI8xI8", "int8"), ("ROUND_SHR_SATURATE_IXxI8xI16", "int16")):
        op(f"op_multi_{mode.lower()}", lambda x, k, mode=mode, out=out: _raw_multi_type(mode, out, x, k),
           lambda rs: [("x", ties(rs)), ("k", np.array([3], np.int8))], expect_ops=["ElemwiseMultiType"],
           note=f"ElemwiseMultiType {mode}: x / 2**k rounded half away from zero, saturated to {out}.")
    for bits, dt in ((16, np.int16), (32, np.int32)):
        mode = f"FUSE_ADD_RMULH_ROUND_SHR_SATURATE_INT{bits}x{bits}x{bits}x8"

        def inputs(rs, bits=bits, dt=dt):
            info = np.iinfo(dt)
            x = rs.randint(info.min // 2, info.max // 2, 200).astype(dt)
            x[:4] = [info.min, info.max, info.min, 0]
            b = rs.randint(info.min // 4, info.max // 4, 200).astype(dt)
            b[:4] = [0, info.max, 0, 0]  # a wrapping sum; MIN * MIN saturating (with m = MIN below: not here)
            m = np.array([int(0.71 * info.max)], dt)
            return [("x", x), ("b", b), ("m", m), ("k", np.array([bits // 4], np.int8)),
                    ("low", np.array([-100], np.int8)), ("high", np.array([90], np.int8))]

        op(f"op_multi_{mode.lower()}", lambda *xs, mode=mode: _raw_multi_type(mode, "int8", *xs), inputs,
           expect_ops=["ElemwiseMultiType"],
           note=f"ElemwiseMultiType {mode}: clamp(round_shr(rmulh(x + b, m), k), low, high).")


_register_rounding_shift()


def _register_quantized():
    conv = "ConvBiasForward"
    qop("q_conv_dense", lambda: M.ConvBnRelu2d(4, 8, 3, 1, 1), expect_ops=[conv], note="ConvBnRelu2d 3x3.")
    qop("q_conv_group", lambda: M.ConvBn2d(4, 8, 3, 1, 1, groups=2), expect_ops=[conv], note="group conv.")
    qop("q_conv_depthwise", lambda: M.ConvRelu2d(4, 4, 3, 1, 1, groups=4), expect_ops=[conv], note="depthwise.")
    qop("q_conv_1x1_strided", lambda: M.Conv2d(4, 8, 1, 2), expect_ops=[conv], note="1x1 stride 2.")
    qop("q_conv_dilated", lambda: M.Conv2d(4, 6, 3, 1, 2, dilation=2), expect_ops=[conv], note="dilation 2.")
    qop("q_conv_asymm", lambda: M.ConvBnRelu2d(4, 8, 3, 2, 1), qconfig="asymm", expect_ops=[conv],
        note="Quantized8Asymm (uint8) activations.")
    qop("q_conv_lowbit", lambda: M.ConvRelu2d(4, 8, 3, 1, 1), qconfig="lowbit", expect_ops=[conv],
        note="ema_lowbit_fakequant_qconfig (qint4): the dump holds QuantizedS8 tensors, no QuantizedS4.")
    qop("q_conv_z", lambda: M.Sequential(M.ConvBn2d(4, 4, 3, 1, 1), M.Elemwise("FUSE_ADD_RELU")),
        fn=lambda body, x: body[1](body[0](x), x), dump={"enable_fuse_conv_bias_with_z": True},
        expect_ops=[conv], note="conv + residual FUSE_ADD_RELU dumped with enable_fuse_conv_bias_with_z. KNOWN BAD "
                                "REFERENCE: the real Lite drops the z input of this quantized ConvBias (its output "
                                "is relu(conv + bias) exactly; MegEngine's own result, relu(conv + bias + z), "
                                "differs by 0.99 as recorded in megengine_vs_lite_max_abs_diff); we compute "
                                "MegEngine's.")
    qop("q_deconv", lambda: M.ConvTranspose2d(4, 6, 3, 2, 1, bias=False), note="ConvTranspose2d "
        "(ConvolutionBackwardData; MegEngine quantizes it only without bias).")
    qop("q_linear", lambda: M.Linear(16, 10), shape=(2, 16),
        note="Linear: MatrixMul QS8 x QS8 -> QS32, ADD of the QS32 bias, TypeCvt to QS8.")
    qop("q_linear_relu", lambda: M.LinearRelu(16, 12, bias=False), shape=(3, 16), note="LinearRelu.")
    qop("q_batch_matmul", lambda: M.Identity(), shape=(2, 3, 16),
        fn=lambda body, x: F.matmul(x, x, transpose_b=True),
        note="F.matmul of two quantized 3-D tensors (BatchedMatrixMul QS8 x QS8 -> QS32); the QAT "
             "BatchMatMulActivation cannot be quantized by MegEngine 1.13 (quantize() fails on it).")
    qop("q_matmul_ta", lambda: M.Identity(), shape=(5, 6),
        fn=lambda body, x: F.matmul(x, x, transpose_a=True), note="F.matmul of quantized 2-D tensors, A^T B.")
    for mode in ("ADD", "MUL", "FUSE_ADD_RELU", "SUB", "MAX", "MIN", "FUSE_ADD_SIGMOID", "FUSE_ADD_TANH",
                 "FUSE_ADD_H_SWISH", "TRUE_DIV"):
        qop(f"q_elemwise_{mode.lower()}", (lambda mode=mode: M.Sequential(M.Conv2d(4, 4, 1), M.Elemwise(mode))),
            fn=lambda body, x: body[1](body[0](x), x), expect_ops=["ElemwiseMultiType"],
            input_range=(0.5, 1.0) if mode == "TRUE_DIV" else (-1.0, 1.0),
            note=f"quantized Elemwise({mode}) (ElemwiseMultiType Q{mode}).")
    for mode in ("RELU", "SIGMOID", "TANH", "H_SWISH", "ABS", "NEGATE"):
        qop(f"q_elemwise_{mode.lower()}", (lambda mode=mode: M.Elemwise(mode)),
            fn=lambda body, x: body(x), expect_ops=["ElemwiseMultiType"],
            note=f"quantized unary Elemwise({mode}).")
    qop("q_concat", lambda: M.Sequential(M.Conv2d(4, 4, 1), M.Concat()),
        fn=lambda body, x: body[1]([body[0](x), x], 1), note="quantized Concat of two differently scaled tensors.")
    qop("q_avgpool", lambda: M.AvgPool2d(2), note="AvgPool2d on QS8.")
    qop("q_avgpool_pad", lambda: M.AvgPool2d(3, 2, 1), note="AvgPool2d 3x3 s2 p1 on QS8.")
    qop("q_maxpool", lambda: M.MaxPool2d(3, 2, 1), note="MaxPool2d on QS8.")
    qop("q_global_avgpool", lambda: M.AvgPool2d(8), note="avg_pool2d over the whole image (as the example).")
    qop("q_adaptive_avgpool", lambda: M.AdaptiveAvgPool2d(1), note="AdaptiveAvgPool2d(1) on QS8.")
    qop("q_adaptive_maxpool", lambda: M.AdaptiveMaxPool2d(2), note="AdaptiveMaxPool2d(2) on QS8.")
    qop("q_mean", lambda: M.Identity(), fn=lambda body, x: x.mean(axis=3), note="Reduce MEAN on QS8.")
    qop("q_max_reduce", lambda: M.Identity(), fn=lambda body, x: x.max(axis=1), note="Reduce MAX on QS8.")
    for name, target, note in (("q_typecvt_asymm", ("quint8", 0.011, 131), "QuantizedS8 -> Quantized8Asymm."),
                               ("q_typecvt_rescale", ("qint8", 0.013), "QuantizedS8 -> QuantizedS8 of another scale."),
                               ("q_typecvt_qs32", ("qint32", 0.0007), "QuantizedS8 -> QuantizedS32."),
                               ("q_typecvt_qint4", ("qint4", 0.2), "QuantizedS8 -> QuantizedS4.")):
        qop(name, lambda: M.Identity(), fn=lambda body, x, target=target: x.astype(_qdtype(*target)),
            note=f"TypeCvt {note}")
    qop("q_reshape", lambda: M.Identity(), fn=lambda body, x: F.flatten(x, 1), note="flatten (Reshape) on QS8.")
    qop("q_dimshuffle", lambda: M.Identity(), fn=lambda body, x: F.transpose(x, (0, 2, 3, 1)), note="transpose.")
    qop("q_subtensor", lambda: M.Identity(), fn=lambda body, x: x[:, 1:3, ::2, 2:7], note="slicing.")
    qop("q_resize", lambda: M.Identity(),
        fn=lambda body, x: F.vision.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False),
        note="bilinear resize on QS8.")
    qop("q_warp_perspective", lambda: M.Identity(),
        fn=lambda body, x: F.vision.warp_perspective(
            x, F.broadcast_to(mge.tensor(np.array([[[0.9, 0.1, 0.5], [-0.1, 1.1, 0.3], [0.0, 0.01, 1.0]]],
                                                  "float32")), (x.shape[0], 3, 3)), (6, 6)),
        note="warp_perspective on QS8.")


_register_quantized()


# Whole quantized networks, re-implemented after MegEngine/Models official/quantization/models (resnet.py,
# shufflenet.py, mobilenet_v2.py): the same quantizable structure (QuantStub, ConvBn(Relu)2d, Elemwise adds,
# avg_pool2d over the last feature map, DequantStub, then a float classifier); widths and input size are
# parameters so the fixtures stay small and the benchmark can build the full-size ones.


class QBasicBlock(M.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv_bn_relu1 = M.ConvBnRelu2d(cin, cout, 3, stride, 1, bias=False)
        self.conv_bn2 = M.ConvBn2d(cout, cout, 3, 1, 1, bias=False)
        self.downsample = M.Identity() if cin == cout and stride == 1 else M.ConvBn2d(cin, cout, 1, stride,
                                                                                        bias=False)
        self.add = M.Elemwise("FUSE_ADD_RELU")

    def forward(self, x):
        return self.add(self.conv_bn2(self.conv_bn_relu1(x)), self.downsample(x))


class QResNet18(M.Module):
    def __init__(self, widths=(64, 128, 256, 512), num_classes=1000, pool=7):
        super().__init__()
        self.quant, self.dequant, self.pool = M.QuantStub(), M.DequantStub(), pool
        self.conv_bn_relu1 = M.ConvBnRelu2d(3, widths[0], 7, 2, 3, bias=False)
        self.maxpool = M.MaxPool2d(3, 2, 1)
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            layers += [QBasicBlock(cin, w, 1 if i == 0 else 2), QBasicBlock(w, w, 1)]
            cin = w
        self.layers = M.Sequential(*layers)
        self.fc = M.Linear(cin, num_classes)
        self.fc.disable_quantize()

    def forward(self, x):
        x = self.layers(self.maxpool(self.conv_bn_relu1(self.quant(x))))
        return self.fc(self.dequant(F.flatten(F.avg_pool2d(x, self.pool), 1)))


class QShuffleV1Block(M.Module):
    def __init__(self, cin, cout, group, first_group, mid, stride):
        super().__init__()
        self.stride, self.group = stride, group
        self.branch_main_1 = M.Sequential(
            M.ConvBnRelu2d(cin, mid, 1, 1, 0, groups=1 if first_group else group, bias=False),
            M.ConvBn2d(mid, mid, 3, stride, 1, groups=mid, bias=False))
        self.branch_main_2 = M.ConvBn2d(mid, cout, 1, 1, 0, groups=group, bias=False)
        self.add = M.Elemwise("FUSE_ADD_RELU")
        if stride == 2:
            self.branch_proj = M.ConvBn2d(cin, cout, 1, 2, 0, bias=False)

    def forward(self, x):
        y = self.branch_main_1(x)
        if self.group > 1:
            n, c, h, w = y.shape
            y = F.transpose(y.reshape(n, c // self.group, self.group, h, w), (0, 2, 1, 3, 4)).reshape(n, c, h, w)
        y = self.branch_main_2(y)
        return self.add(y, x) if self.stride == 1 else self.add(self.branch_proj(x), y)


class QShuffleNetV1(M.Module):
    def __init__(self, channels=(24, 240, 480, 960), group=3, repeats=(4, 8, 4), num_classes=1000, pool=7):
        super().__init__()
        self.quant, self.dequant, self.pool = M.QuantStub(), M.DequantStub(), pool
        self.first_conv = M.ConvBnRelu2d(3, channels[0], 3, 2, 1, bias=False)
        self.maxpool = M.MaxPool2d(3, 2, 1)
        blocks, cin = [], channels[0]
        for stage, n in enumerate(repeats):
            for i in range(n):
                blocks.append(QShuffleV1Block(cin, channels[stage + 1], group, stage == 0 and i == 0,
                                              channels[stage + 1] // 4, 2 if i == 0 else 1))
                cin = channels[stage + 1]
        self.features = M.Sequential(*blocks)
        self.classifier = M.Linear(cin, num_classes, bias=False)
        self.classifier.disable_quantize()

    def forward(self, x):
        x = self.features(self.maxpool(self.first_conv(self.quant(x))))
        return self.classifier(self.dequant(F.flatten(F.avg_pool2d(x, self.pool), 1)))


class QInvertedResidual(M.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers = [M.ConvBnRelu2d(cin, hidden, 1, bias=False)] if expand != 1 else []
        layers += [M.ConvBnRelu2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   M.ConvBn2d(hidden, cout, 1, bias=False)]
        self.conv = M.Sequential(*layers)
        self.add = M.Elemwise("ADD")

    def forward(self, x):
        return self.add(x, self.conv(x)) if self.use_res else self.conv(x)


class QMobileNetV2(M.Module):
    CFG = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, width=1.0, last=1280, num_classes=1000, pool=7):
        super().__init__()
        self.quant, self.dequant, self.pool = M.QuantStub(), M.DequantStub(), pool
        ch = lambda c: max(8, int(c * width + 4) // 8 * 8)  # noqa: E731  (the example's _make_divisible, 8)
        features, cin = [M.ConvBnRelu2d(3, ch(32), 3, 2, 1, bias=False)], ch(32)
        for t, c, n, s in self.CFG:
            for i in range(n):
                features.append(QInvertedResidual(cin, ch(c), s if i == 0 else 1, t))
                cin = ch(c)
        features.append(M.ConvBnRelu2d(cin, last, 1, bias=False))
        self.features = M.Sequential(*features)
        self.classifier = M.Linear(last, num_classes)
        self.classifier.disable_quantize()

    def forward(self, x):
        x = F.flatten(F.avg_pool2d(self.features(self.quant(x)), self.pool), 1)
        return self.classifier(self.dequant(x))


class QTransformerBlock(M.Module):
    """A QAT transformer block: quantized Linear projections and feed-forward, quantized matmuls for the scores
    and the weighted values, softmax in float (MegEngine quantizes no softmax), quantized residual adds."""

    def __init__(self, dim=16):
        super().__init__()
        self.quant, self.dequant = M.QuantStub(), M.DequantStub()
        self.q, self.k, self.v, self.o = (M.Linear(dim, dim) for _ in range(4))
        self.scores_out, self.probs_in = M.DequantStub(), M.QuantStub()
        self.mixed_out, self.mixed_in = M.DequantStub(), M.QuantStub()
        self.ff1, self.ff2 = M.LinearRelu(dim, 2 * dim), M.Linear(2 * dim, dim)
        self.add1, self.add2 = M.Elemwise("ADD"), M.Elemwise("ADD")

    def quantized(self, x):
        x = self.quant(x)
        n, t, d = x.shape
        q, k, v = (proj(x.reshape(n * t, d)).reshape(n, t, d) for proj in (self.q, self.k, self.v))
        probs = self.probs_in(F.softmax(self.scores_out(F.matmul(q, k, transpose_b=True)) * d ** -0.5, axis=-1))
        mixed = self.mixed_in(self.mixed_out(F.matmul(probs, v)))
        y = self.add1(x, self.o(mixed.reshape(n * t, d)).reshape(n, t, d))
        return self.add2(y, self.ff2(self.ff1(y.reshape(n * t, d))).reshape(n, t, d))

    def forward(self, x):
        return self.dequant(self.quantized(x))


@fixture("q_transformer_block", "model")
def _():
    rs = rng("q_transformer_block")
    q = quantized_model(QTransformerBlock(), rs, (2, 5, 16))
    data = rs.uniform(-1, 1, (2, 5, 16)).astype("float32")
    step = output_step(q, data)
    return module_spec(q, [("data", data)], output_names=["out"], rtol=0.0, atol=float(np.float32(step * 1.001)),
                       note="QAT transformer block (quantized Linear, BatchedMatrixMul QS8 x QS8 -> QS32, float "
                            "softmax between stubs, quantized ADDs). atol: one quantization step of the output.",
                       manifest_extra={"quant_step": step})


QUANT_NETS = {
    # name -> (full-size constructor, small constructor for a 64x64 input)
    "resnet18": (lambda: QResNet18(), lambda: QResNet18((8, 16, 24, 32), 10, pool=2)),
    "shufflenet_v1": (lambda: QShuffleNetV1(), lambda: QShuffleNetV1((12, 24, 48, 96), 3, (2, 2, 2), 10, pool=2)),
    "mobilenetv2": (lambda: QMobileNetV2(), lambda: QMobileNetV2(0.25, 64, 10, pool=2)),
}


def _register_quantized_nets():
    for net, (_, small) in QUANT_NETS.items():
        def builder(net=net, small=small):
            name = f"q_{net}_small"
            rs = rng(name)
            q = quantized_model(small(), rs, (1, 3, 64, 64), "calibration", batches=3, input_range=(0.0, 1.0))
            data = rs.uniform(0, 1, (1, 3, 64, 64)).astype("float32")
            return module_spec(q, [("data", data)], output_names=["out"], rtol=0.0, atol=0.05,
                               note=f"quantized {net} after MegEngine/Models official/quantization (reduced widths, "
                                    f"64x64 input, calibration_qconfig on 3 random batches, quantize), random "
                                    f"weights; float classifier after the DequantStub. atol 0.05: a one-step "
                                    f"difference of a pooled feature moves the logits by a few hundredths.")

        register(f"q_{net}_small", builder, category="model")


_register_quantized_nets()


# ---------------------------------------------------------------------------------------------------------------
# Reading the dumped file (own minimal FlatBuffers reader; enough for operator types and output names)
# ---------------------------------------------------------------------------------------------------------------


# Elemwise mode numbers (megdnn param::Elemwise::Mode), used to decode Elemwise params from the file; cross-checked
# against Network.load's decoded params for every fixture Network.load can open. A copy, since this package cannot
# be imported under the real MegEngine; tests/graph/test_fixture_mode_table.py checks it against the package's.
ELEMWISE_MODE_NAMES = {
    0: "RELU", 1: "ABS", 2: "ACOS", 3: "ASIN", 4: "CEIL", 5: "COS", 6: "EXP", 7: "EXPM1", 8: "FLOOR", 9: "LOG",
    10: "LOG1P", 11: "NEGATE", 12: "SIGMOID", 13: "SIN", 14: "TANH", 15: "ABS_GRAD", 16: "ADD", 17: "FLOOR_DIV",
    18: "MAX", 19: "MIN", 20: "MOD", 21: "MUL", 22: "POW", 23: "SIGMOID_GRAD", 24: "SUB", 25: "SWITCH_GT0",
    26: "TANH_GRAD", 27: "TRUE_DIV", 28: "LOG_SUM_EXP", 29: "LT", 30: "LEQ", 31: "EQ", 32: "SHL", 33: "SHR",
    34: "COND_LEQ_MOV", 35: "FUSE_MUL_ADD3", 36: "FUSE_MUL_ADD4", 37: "FUSE_ADD_RELU", 38: "FUSE_ADD_SIGMOID",
    39: "FUSE_ADD_TANH", 40: "FAST_TANH", 41: "FAST_TANH_GRAD", 42: "ROUND", 43: "RMULH", 44: "ATAN2", 45: "ERF",
    46: "ERFINV", 47: "ERFC", 48: "ERFCINV", 49: "H_SWISH", 50: "H_SWISH_GRAD", 51: "FUSE_ADD_H_SWISH", 52: "NOT",
    53: "AND", 54: "OR", 55: "XOR", 56: "SILU", 57: "SILU_GRAD", 58: "GELU", 59: "GELU_GRAD", 60: "COND_LT_MOV",
    61: "NEQ", 62: "ISNAN", 63: "ISINF", 64: "SINH", 65: "COSH", 66: "ASINH", 67: "ACOSH", 68: "ATANH", 69: "TAN",
    70: "ASINH_GRAD", 71: "ACOSH_GRAD", 72: "ATANH_GRAD", 73: "PRELU", 74: "CLIP", 75: "PRELU_GRAD",
    76: "SOFTPLUS", 77: "SOFTPLUS_GRAD", 78: "RELU6", 79: "RELU6_GRAD", 80: "HSIGMOID", 81: "HSIGMOID_GRAD",
    82: "LOGSIGMOID", 83: "SQRT", 84: "SQUARE", 85: "SIGN",
}


class NotV2(ValueError):
    pass


class _FB:
    def __init__(self, buf):
        self.b = buf

    def u32(self, p):
        return struct.unpack_from("<I", self.b, p)[0]

    def field(self, table, slot):
        vt = table - struct.unpack_from("<i", self.b, table)[0]
        vlen = struct.unpack_from("<H", self.b, vt)[0]
        if 4 + 2 * slot >= vlen:
            return None
        off = struct.unpack_from("<H", self.b, vt + 4 + 2 * slot)[0]
        return table + off if off else None

    def deref(self, p):
        return p + self.u32(p)

    def scalar_u32(self, table, slot, default=0):
        p = self.field(table, slot)
        return default if p is None else self.u32(p)

    def vector(self, table, slot):
        p = self.field(table, slot)
        if p is None:
            return []
        v = self.deref(p)
        return [v + 4 + 4 * i for i in range(self.u32(v))]

    def string(self, table, slot):
        p = self.field(table, slot)
        if p is None:
            return None
        s = self.deref(p)
        return self.b[s + 4:s + 4 + self.u32(s)].decode()


def read_mge(path, with_inputs=False):
    """Returns (operator types in file order, output var names) of an FBS_V2 file; with ``with_inputs`` also the
    names of the Host2DeviceCopy tensors in file order."""
    data = Path(path).read_bytes()
    if data[:8] == b"mgbtest0":  # test-case container: u32 case count, then the model graph
        data = data[12:]
    if data[8:12] != b"mgv2":
        raise NotV2(f"{path}: not an FBS_V2 (mgv2) file")
    fb = _FB(data[4:])
    root = fb.deref(0)
    types = [fb.string(fb.deref(e), 0) for e in fb.vector(root, 2)]
    tensors = [fb.deref(e) for e in fb.vector(root, 3)]
    outs = []
    for e in fb.vector(root, 4):
        ov = fb.deref(e)
        p = fb.field(ov, 0)
        cid = fb.u32(p) if p is not None else 0
        outs.append(fb.string(tensors[cid], 0) if tensors else None)
    if not tensors:  # keep_var_name=0: names are not stored
        outs = None
    if with_inputs:
        h2d = [fb.string(fb.deref(fb.vector(fb.deref(e), 11)[0]), 0)
               for e, t in zip(fb.vector(root, 2), types) if t == "Host2DeviceCopy"]
        modes = set()
        for e, t in zip(fb.vector(root, 2), types):
            if t == "Elemwise":
                opr = fb.deref(e)
                pp = fb.field(opr, 4)
                mode = 0 if pp is None else fb.scalar_u32(fb.deref(pp), 0)
                modes.add(ELEMWISE_MODE_NAMES.get(mode, f"#{mode}"))
        return types, outs, h2d, sorted(modes)
    return types, outs


# ---------------------------------------------------------------------------------------------------------------
# Deterministic .npz writer (numpy.savez stamps the current time into the zip)
# ---------------------------------------------------------------------------------------------------------------


def save_npz(path, arrays):
    tmp = Path(str(path) + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            bio = io.BytesIO()
            np.lib.format.write_array(bio, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, bio.getvalue())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------------
# Worker: generate one fixture
# ---------------------------------------------------------------------------------------------------------------


def stage(what):
    """Progress marker on stderr: the driver reports the last one when a worker fails (or crashes)."""
    print(f"stage: {what}", file=sys.stderr, flush=True)


def run_real_lite(path, inputs, dropped=()):
    import megenginelite as lite

    if Path(lite.__file__).resolve().is_relative_to(ROOT):
        raise RuntimeError(f"imported this project's megenginelite ({lite.__file__}), not the real one")

    stage("real megenginelite: load")
    net = lite.LiteNetwork()
    net.load(str(path))
    in_names = list(net.get_all_input_name())
    out_names = list(net.get_all_output_name())
    feed = {k: v for k, v in inputs if k not in dropped}
    if sorted(in_names) != sorted(feed):
        raise RuntimeError(f"real megenginelite reports inputs {in_names}, fixture has {sorted(feed)}")
    for n in in_names:
        net.get_io_tensor(n).set_data_by_copy(np.ascontiguousarray(feed[n]))
    stage("real megenginelite: forward")
    net.forward()
    net.wait()
    outs = [(n, net.get_io_tensor(n).to_numpy()) for n in out_names]
    return in_names, outs


def netload_info(path):
    from megengine.utils.network import Network

    net = Network.load(str(path))
    modes = set()
    for o in net.all_oprs:
        if type(o).__name__ == "Elemwise":
            modes.add(str(o.params.get("mode")))
    return len(net.all_oprs), sorted(modes), sorted({type(o).__name__ for o in net.all_oprs})


def worker(name, out_json):
    _import_megengine()
    info = REGISTRY[name]
    np.random.seed(0)
    mge.random.seed(0)
    stage("build model")
    spec = info["builder"]()
    entry = {"name": name, "category": info["category"]}
    if spec.file is None:
        mge_path = FIXTURES / f"{name}.mge"
        tensors = [mge.tensor(a, dtype=a.dtype) for _, a in spec.inputs]
        stage("trace")
        traced = trace(spec.fn, symbolic=True, capture_as_const=True)
        ref = traced(*tensors)
        ref = list(ref) if isinstance(ref, (list, tuple)) else [ref]
        ref = [r.numpy() for r in ref]
        tmp = FIXTURES / f".{name}.mge.tmp"
        kw = dict(spec.dump)
        if spec.output_names == "auto":
            kw["output_names"] = ["out"] if len(ref) == 1 else [f"out{i}" for i in range(len(ref))]
        elif spec.output_names is not None:
            kw["output_names"] = list(spec.output_names)
        stage("megengine dump")
        traced.dump(str(tmp), arg_names=[n for n, _ in spec.inputs], **kw)
        os.replace(tmp, mge_path)
    else:
        mge_path = FIXTURES / spec.file
        ref = None
    stage("megengine.utils.network.Network.load")
    try:
        n_netload, netload_modes, netload_types = netload_info(mge_path)
    except Exception as ex:  # noqa: BLE001 - e.g. Network.load cannot read model_version=1 files
        n_netload, netload_modes, netload_types = None, None, None
        print(f"note: Network.load failed: {ex}", file=sys.stderr)
    try:
        types, file_outs, file_ins, modes = read_mge(mge_path, with_inputs=True)
        ops_source = "file"
    except NotV2:  # FBS V1 stores only type-id hashes: use Network.load's names
        types, file_outs, file_ins, modes = netload_types, None, None, netload_modes
        ops_source = "Network.load"
    if ops_source == "file" and n_netload is not None:
        if n_netload != len(types):
            raise RuntimeError(f"decoded {len(types)} operators but Network.load lists {n_netload}")
        if modes != netload_modes:
            raise RuntimeError(f"decoded Elemwise modes {modes} but Network.load has {netload_modes}")
    missing = [t for t in spec.expect_ops if t not in types] + [m for m in spec.expect_modes if m not in modes]
    if missing:
        raise RuntimeError(f"the dump does not contain {missing}; it has ops {sorted(set(types))} "
                           f"and Elemwise modes {modes}")

    in_names, outs = run_real_lite(mge_path, spec.inputs, spec.dropped_inputs)
    out_names = [n for n, _ in outs]
    if file_outs is not None and out_names != file_outs:
        raise RuntimeError(f"lite output names {out_names} != file output names {file_outs}")
    if file_ins is not None and sorted(in_names) != sorted(file_ins):
        raise RuntimeError(f"lite inputs {in_names} != Host2DeviceCopy tensors in the file {file_ins}")
    feed = dict(spec.inputs)
    arrays = {}
    for n in in_names:
        arrays[f"input:{n}"] = feed[n]
    for n, a in outs:
        arrays[f"output:{n}"] = a
    save_npz(FIXTURES / f"{name}.npz", arrays)

    entry.update({
        "file": mge_path.name,
        "inputs": in_names,
        "file_input_order": file_ins,
        "outputs": out_names,
        "input_shapes": [list(feed[n].shape) for n in in_names],
        "input_dtypes": [str(feed[n].dtype) for n in in_names],
        "output_shapes": [list(a.shape) for _, a in outs],
        "output_dtypes": [str(a.dtype) for _, a in outs],
        "ops": sorted(set(types)),
        "ops_source": ops_source,
        "elemwise_modes": modes,
        "dump_options": {k: v for k, v in spec.dump.items()},
        "rtol": spec.rtol,
        "atol": spec.atol,
        "note": spec.note,
    })
    if ref is not None and len(ref) == len(outs):
        diffs = []
        for r, (_, a) in zip(ref, outs):
            if r.size == a.size and a.dtype.kind in "fiub":
                diffs.append(float(np.max(np.abs(r.reshape(a.shape).astype(np.float64) - a.astype(np.float64))))
                             if a.size else 0.0)
            else:
                diffs.append(None)
        entry["megengine_vs_lite_max_abs_diff"] = diffs
    entry.update(spec.manifest_extra)
    if spec.extra.get("seed_print"):
        out = outs[0][1]
        entry["seed_print"] = "shufflenet output max={}, sum={}".format(out.max(), out.sum())
    Path(out_json).write_text(json.dumps(entry))


# ---------------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------------


def select(patterns):
    names = list(REGISTRY)
    if not patterns:
        return names
    chosen = {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if unknown:
        raise SystemExit(f"no fixture matches {unknown}; see --list")
    # a fixture that reuses another's file needs that one (and vice versa, its reference must follow the file)
    for n in names:
        dep = REGISTRY[n]["depends"]
        if dep and (n in chosen or dep in chosen):
            chosen.update({n, dep})
    return [n for n in names if n in chosen]


def run_one(name, timeout):
    with tempfile.TemporaryDirectory() as td:
        out_json = Path(td) / "entry.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(out_json)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
        except subprocess.TimeoutExpired as ex:
            err = ex.stderr.decode(errors="replace") if isinstance(ex.stderr, bytes) else (ex.stderr or "")
            stages = [ln for ln in err.splitlines() if ln.startswith("stage: ")]
            return name, None, "\n".join(stages[-1:] + [f"timed out after {timeout} s"])
        if p.returncode == 0 and out_json.exists():
            return name, json.loads(out_json.read_text()), None
        err = (p.stderr or "") + (p.stdout or "")
        lines = [ln.rstrip() for ln in err.splitlines() if ln.strip() and not _noise(ln)]
        stages = [ln for ln in lines if ln.startswith("stage: ")]
        lines = [ln for ln in lines if not ln.startswith("stage: ")]
        msg = "\n".join(stages[-1:] + lines[-12:]) if lines else "\n".join(stages[-1:] + [f"exit code {p.returncode}"])
        if p.returncode < 0:
            msg = "\n".join(stages[-1:] + [f"worker killed by signal {-p.returncode}"] + lines[-12:])
        return name, None, msg


def _noise(line):
    """Log lines that say nothing about why a worker failed (MegEngine banners, native backtraces)."""
    t = line.strip()
    return (t.startswith(("info:", "debug:", "backtrace:", "buf = open", "ResourceWarning", "/root/", "["))
            or ".so(" in t or "ResourceWarning" in t or t == ", Error Code: 1")


def summarize_error(err):
    """The most telling line(s) of a failure: the exception line and MegEngine's 'extra message'."""
    stages = [ln.strip()[len("stage: "):] for ln in err.splitlines() if ln.startswith("stage: ")]
    lines = [ln.strip() for ln in err.splitlines() if ln.strip() and not _noise(ln) and not ln.startswith("stage: ")]
    picked = [ln for ln in lines if ln.startswith(("extra message:", "timed out", "worker killed"))
              or re.match(r"^[\w.]*(Error|Exception)\b", ln)]
    out = []
    for ln in picked or lines[-1:]:
        if ln not in out:
            out.append(ln)
    where = f"[{stages[-1]}] " if stages else ""
    return where + " / ".join(out[-3:])[:600]


def load_json(path, default):
    return json.loads(path.read_text()) if path.exists() else default


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("patterns", nargs="*", help="fixture names or globs (default: all)")
    ap.add_argument("--list", action="store_true", help="list fixture names and exit")
    ap.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--check-only", action="store_true", help="only run the consistency check")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "OUT_JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        try:
            worker(*args.worker)
        except Exception:
            traceback.print_exc()
            return 1
        return 0
    if args.list:
        for n, info in REGISTRY.items():
            print(f"{n:40s} {info['category']:6s} group {info['group']}")
        return 0
    if args.check_only:
        return check()

    FIXTURES.mkdir(parents=True, exist_ok=True)
    names = select(args.patterns)
    first = [n for n in names if not REGISTRY[n]["depends"]]
    second = [n for n in names if REGISTRY[n]["depends"]]
    results = {}
    for batch in (first, second):
        with ThreadPoolExecutor(args.jobs) as ex:
            for name, entry, err in ex.map(lambda n: run_one(n, REGISTRY[n]["timeout"] or args.timeout), batch):
                results[name] = (entry, err)
                detail = "" if entry else "\n    " + err.replace("\n", "\n    ")
                print(f"{'ok  ' if entry else 'FAIL'} {name}{detail}", flush=True)

    manifest = {e["name"]: e for e in load_json(MANIFEST, [])}
    unavailable = {e["name"]: e for e in load_json(UNAVAILABLE, [])}
    for name, (entry, err) in results.items():
        if entry is not None:
            manifest[name] = entry
            unavailable.pop(name, None)
        else:
            manifest.pop(name, None)
            unavailable[name] = {"name": name, "error": err}
    # keep registry order; drop entries of fixtures that no longer exist
    manifest_list = [manifest[n] for n in REGISTRY if n in manifest]
    unavailable_list = [unavailable[n] for n in REGISTRY if n in unavailable]
    MANIFEST.write_text(json.dumps(manifest_list, indent=1) + "\n")
    UNAVAILABLE.write_text(json.dumps(unavailable_list, indent=1) + "\n")
    # remove files of fixtures that failed or no longer exist -- only files this script generates (other tools
    # keep their own files in this folder and its subfolders)
    referenced = {e["file"] for e in manifest_list} | {e["name"] + ".npz" for e in manifest_list}
    ours = set(REGISTRY) | set(manifest) | set(unavailable)
    for p in FIXTURES.iterdir():
        if p.is_file() and p.suffix in (".mge", ".npz") and p.stem in ours and p.name not in referenced:
            p.unlink()
    write_readme(manifest_list, unavailable_list)
    rc = check()
    n_fail = sum(1 for e, _ in results.values() if e is None)
    print(f"{len(results) - n_fail} fixtures written, {n_fail} unavailable")
    return rc


# ---------------------------------------------------------------------------------------------------------------
# README and consistency check
# ---------------------------------------------------------------------------------------------------------------

README_HEAD = """\
# Test fixtures: real MegEngine 1.13.0 dumps and real `megenginelite` outputs

Everything in this folder is generated by `tools/make_fixtures.py`; do not edit it by hand.

## Regenerating

From the repository root, with the real MegEngine 1.13.0 (Python 3.10, numpy 1.x) made by
`../shared/tools/real-megengine`:

```sh
"$(../shared/tools/real-megengine)" tools/make_fixtures.py              # all fixtures
"$(../shared/tools/real-megengine)" tools/make_fixtures.py op_conv_dense # one fixture (names or globs)
"$(../shared/tools/real-megengine)" tools/make_fixtures.py 'op_elemwise_*'
"$(../shared/tools/real-megengine)" tools/make_fixtures.py --list        # fixture names
python tools/make_fixtures.py --check-only                               # consistency check, no MegEngine needed
```

If `../shared/tools/real-megengine` says that megengine "does not import" when run from the repository root (its
check runs `python -c 'import megengine, megenginelite'`, which then picks up *this* repository's package), run it
from elsewhere: `PY="$(cd .. && shared/tools/real-megengine)" && "$PY" tools/make_fixtures.py`.

The output is deterministic (seeded `numpy.random.RandomState` per fixture, MegEngine's RNG seeded too, weights
overwritten from the RandomState, `.npz` written with fixed zip timestamps), so regenerating gives byte-identical
files. Each fixture is generated in its own subprocess; the script ends with a consistency check of the manifest
against the files. The project's tests only read these files and never need MegEngine.

## What is in here

- `<name>.mge`: a model dumped by `megengine.jit.trace(symbolic=True, capture_as_const=True)` and
  `.dump(path, arg_names=[...], output_names=[...] or default names, **options)`. Default dump options
  (FBS_V2, `optimize_for_inference=True`, `no_change_graph=False`) unless the entry's `dump_options` says otherwise.
- `<name>.npz`: the reference. Keys `input:<input name>` (exactly what was fed) and `output:<output name>`:
  what the **real** `megenginelite` 1.13.0 returned for that input (`LiteNetwork().load(path)`,
  `get_io_tensor(name).set_data_by_copy(array)`, `forward()`, `wait()`, `get_io_tensor(out).to_numpy()`;
  default `LiteConfig`, CPU, 1 thread). Not megengine's imperative result.
- `manifest.json`: a list with one entry per fixture:
  - `name`; `file` (the `.mge`, relative to this folder; `shufflenet_v2_b4` shares `shufflenet_v2.mge`);
    `category` (`"model"` or `"op"`);
  - `inputs` / `outputs`: names in the order the real `get_all_input_name()` / `get_all_output_name()` return;
  - `input_shapes`, `input_dtypes`, `output_shapes`, `output_dtypes`: lists parallel to `inputs` / `outputs`
    (dtypes as numpy names; output shapes/dtypes are those of the real library's `to_numpy()`);
  - `ops`: sorted unique operator type strings **as stored in the file** (`Operator.type`, e.g. `ReshapeV1`,
    `ConvBiasForward`), decoded from the FlatBuffer by the script's own small reader (and the operator count
    cross-checked against `megengine.utils.network.Network.load(path).all_oprs`);
  - `ops_source`: `"file"` (decoded as above) or `"Network.load"` (FBS V1 files store only type-id hashes, so
    there the names are `type(o).__name__` of `Network.load(path).all_oprs`, e.g. `ConvBias`, `Pooling`);
  - `elemwise_modes`: sorted Elemwise modes in the file (decoded from the Elemwise params by the same reader and
    cross-checked against `Network.load(...).all_oprs[i].params["mode"]`);
  - `dump_options`: non-default `trace.dump` keyword arguments used;
  - `rtol`, `atol`: suggested tolerances for comparing our outputs to the reference
    (`abs(ours - ref) <= atol + rtol * abs(ref)`); default 1e-4 / 1e-5, larger ones are explained in `note`;
  - `note`; `megengine_vs_lite_max_abs_diff`: per output, max |megengine traced result - real lite result|
    at generation time (a sanity check; `null` where not comparable);
  - `seed_print` (shufflenet_v2 only): the exact string
    `'shufflenet output max={}, sum={}'.format(out.max(), out.sum())` for the real library's output.
- `unavailable.json`: fixtures that could not be produced, with the error (also listed below).
"""


def write_readme(manifest, unavailable):
    lines = [README_HEAD, "## Fixtures\n",
             "| name | category | inputs | outputs | ops | .mge bytes |", "|---|---|---|---|---|---|"]
    for e in manifest:
        size = (FIXTURES / e["file"]).stat().st_size if (FIXTURES / e["file"]).exists() else 0
        ins = ", ".join(f"`{n}` {tuple(s)} {d}" for n, s, d in zip(e["inputs"], e["input_shapes"], e["input_dtypes"]))
        outs = ", ".join(f"`{n}` {tuple(s)} {d}"
                         for n, s, d in zip(e["outputs"], e["output_shapes"], e["output_dtypes"]))
        ops = ", ".join(e["ops"])
        if e.get("elemwise_modes"):
            ops += " (Elemwise: " + ", ".join(e["elemwise_modes"]) + ")"
        lines.append(f"| {e['name']} | {e['category']} | {ins} | {outs} | {ops} | {size} |")
    lines.append("")
    lines.append("## Could not be produced\n")
    lines.append(README_UNAVAILABLE_INTRO)
    if unavailable:
        for u in unavailable:
            lines.append(f"- `{u['name']}`: {summarize_error(u['error'])}")
    else:
        lines.append("- (none)")
    lines.append("")
    lines.append(README_OBSERVATIONS)
    README.write_text("\n".join(lines) + "\n")


README_UNAVAILABLE_INTRO = """\
Fixtures the script tried but could not produce with MegEngine 1.13.0 / the real megenginelite (full error in
`unavailable.json`):
"""

README_OBSERVATIONS = """\
## Observed behaviour of the real MegEngine 1.13.0 / megenginelite worth knowing

- **Input order.** `get_all_input_name()` is *not* the `arg_names` order nor the file's Host2DeviceCopy order:
  it is the iteration order of a libstdc++ `std::unordered_map<std::string, ...>` filled in file order
  (e.g. file order `x, y` -> `['y', 'x']`; `x, y, z` -> `['z', 'y', 'x']`; `b, a` -> `['a', 'b']`). The
  manifest's `inputs` is the real order and `file_input_order` the Host2DeviceCopy order in the file.
  Outputs come in `output_names` (= `output_vars_idx`) order.
- **Bool.** The real lite refuses to *load* a model with a bool output
  (`RuntimeError: Error: unsupport dtype in lite : {...} Bool`), and Lite has no bool IO dtype, so bool results
  are cast to int32 inside the fixtures. int8 / int16 / uint8 / int32 outputs come back with those numpy dtypes.
- **Scalars** come out with shape `(1,)` (the graph has no 0-d tensors).
- **Output names.** Without `output_names` the output keeps the var name (`Softmax` for `F.softmax`). With
  `keep_var_name=0` the file stores no names and the real lite invents one from the loaded graph
  (`softmax(ADD[51])[53]`, see `format_keep_var_name0`).
- **Dump-time rewrites that change results** (the references hold what the real lite computes from the file;
  `megengine_vs_lite_max_abs_diff` shows the difference to megengine's own result):
  - SIGN is rewritten to `SUB(LT(x,0), LT(0,x))` = **-sign(x)** (`op_elemwise_sign`, `op_sign_func`).
  - CLIP (`F.clip`) is rewritten to `MIN(lower, MAX(x, lower))`: the upper bound is lost and the result is the
    lower bound everywhere; a tensor upper bound disappears from the inputs (`op_elemwise_clip`, `op_clip_const`).
  - ISINF is rewritten to `EQ(x, +inf)`: -inf is not detected (`op_cmp_isinf`).
  - `no_change_graph=True` keeps the raw modes (`*_raw` fixtures) and gives the expected values.
- **Float16.** In a float16 graph (`enable_io16xc32` / `enable_ioc16`) the real lite's max pooling returns the
  float16 copy of the network *input* instead of the pooled activations (seen with `io_txt_dump`), so
  `format_io16xc32` / `format_ioc16` carry `known_bad_reference`; `format_f16_nopool_*` agree with float32 to 3e-4.
- **Elemwise modes NEQ, ISNAN, ISINF** exist in the Python enum but megdnn's Elemwise rejects them ("please add new
  elemwise to switch mode"); they are ElemwiseMultiType modes (`op_cmp_*_raw`).
- **Adaptive pooling** uses stride = floor(in/out), window = in - (out-1)*stride (`op_adaptive_pool_*_uneven`).
- **ROUND** is half away from zero; float MOD is fmod (C sign rule); int32 MOD/FLOOR_DIV follow Python.
- **Network.load** (megengine.utils.network) cannot open `model_version=1` files nor `mgbtest0` test-case files,
  and names operators differently from the file (`ConvBias`, `Pooling`, ...; for FBS V1 files
  `ConvolutionForward`, `PoolingForward`, `ReadOnlyOpNode`, ...).
- **seed_print**: `'{}'.format(np.float32(...))` goes through Python float formatting, so the printed max has
  float64 digits (`max=0.08057423681020737`), and the softmax sum printed as exactly `1.0`.
- **Regenerating from the repository root:** `../shared/tools/real-megengine` checks its venv with
  `python -c 'import megengine, megenginelite'`, which (cwd first on `sys.path`) imports *this* repository's
  `megenginelite` and can fail; then use `PY="$(cd .. && shared/tools/real-megengine)"; "$PY" tools/make_fixtures.py`.
  The script itself drops the repository root from `sys.path` and checks that it runs the real `megenginelite`.
"""


def check():
    """Consistency check of manifest.json against the files; returns a process exit code."""
    problems = []
    manifest = load_json(MANIFEST, [])
    names = set()
    for e in manifest:
        n = e["name"]
        if n in names:
            problems.append(f"{n}: duplicate entry")
        names.add(n)
        for key in ("name", "file", "inputs", "outputs", "input_shapes", "input_dtypes", "output_shapes",
                    "output_dtypes", "ops", "category", "rtol", "atol", "note"):
            if key not in e:
                problems.append(f"{n}: missing field {key}")
        path = FIXTURES / e["file"]
        if not path.exists():
            problems.append(f"{n}: missing {e['file']}")
            continue
        try:
            types, outs = read_mge(path)
        except NotV2:
            if e.get("ops_source") != "Network.load":
                problems.append(f"{n}: {e['file']} is not FBS_V2 but ops_source is {e.get('ops_source')}")
            types, outs = None, None
        except Exception as ex:  # noqa: BLE001
            problems.append(f"{n}: cannot decode {e['file']}: {ex}")
            continue
        if types is not None and sorted(set(types)) != e["ops"]:
            problems.append(f"{n}: ops {e['ops']} != file {sorted(set(types))}")
        if outs is not None and outs != e["outputs"]:
            problems.append(f"{n}: outputs {e['outputs']} != file {outs}")
        try:
            with np.load(FIXTURES / f"{n}.npz", allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as ex:  # noqa: BLE001
            problems.append(f"{n}: cannot open {n}.npz: {ex}")
            continue
        want = {f"input:{x}" for x in e["inputs"]} | {f"output:{x}" for x in e["outputs"]}
        if set(data) != want:
            problems.append(f"{n}: npz keys {sorted(data)} != {sorted(want)}")
            continue
        for kind in ("input", "output"):
            for x, s, d in zip(e[kind + "s"], e[kind + "_shapes"], e[kind + "_dtypes"]):
                a = data[f"{kind}:{x}"]
                if list(a.shape) != list(s) or str(a.dtype) != d:
                    problems.append(f"{n}: {kind} {x} is {a.shape} {a.dtype}, manifest says {s} {d}")
                if kind == "output" and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                    problems.append(f"{n}: {kind} {x} has non-finite values")
    for p in problems:
        print("CHECK:", p)
    print(f"check: {len(manifest)} manifest entries, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
