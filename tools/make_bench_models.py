"""Dump full-size benchmark models (ResNet-18, MobileNetV2 1.0, 224x224) with the real MegEngine 1.13, float and
quantized (``q_<name>.mge``: the official quantization example's structure, calibrated and quantized; with
``q_<name>_float.mge``, the same network unquantized, for the float-vs-int8 comparison), and detectors with a
ResNet-18 backbone at 320x320 (into bench/models/detect/).

    PY="$(cd .. && shared/tools/real-megengine)"; "$PY" tools/make_bench_models.py

They are too big for the repository (bench/models/ is ignored): the fixtures keep reduced widths, the speed
targets are about the real sizes. Weights are seeded random with calibrated BatchNorm (the fixtures' helpers).

``--zoo [NAME...]`` writes MegEngine's official model zoo architectures (tools/zoo_models.py: ResNeXt-50 32x4d,
FCOS with GroupNorm heads, DeepLabV3+, SimpleBaseline-ResNet50, BERT 2x128, DCGAN generator, YOLOX-nano) with their
batch-1 inputs (``<name>.npz``) into bench/models/zoo/, for ``bench_latency.py --zoo``.

``--float``, ``--quantized``, ``--detect``, ``--periodic``, ``--zoo`` choose what to write (default: the first three).
``--periodic`` writes ``resnet18_periodic.mge``: the same network whose every weight tensor repeats one block
of 4096 random values, so the file compresses ~50x with xz and can travel to the GPU machine (bench/gpu_check.sh),
whose runs carry at most 64 MiB. GPU kernel times do not depend on the weight values.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import make_detect_fixtures as det  # tools/, next to this script
from fixtures.helpers import calibrate_bn, init_params, set_param
from fixtures.models import InvertedResidual, ResNet18Small
from fixtures.paths import ROOT
from fixtures.quantized import QUANT_NETS, quantized_model
from fixtures.real_megengine import F, M, mge, require, trace
from fixtures.registry import rng

OUT = ROOT / "bench" / "models"


class MobileNetV2(M.Module):
    """MobileNetV2 1.0 (expansion 6, standard channel plan, ReLU6, 1000 classes)."""

    CFG = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self):
        super().__init__()
        self.stem = M.Sequential(M.Conv2d(3, 32, 3, 2, 1, bias=False), M.BatchNorm2d(32))
        blocks, cin = [], 32
        for t, c, n, s in self.CFG:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, t, s if i == 0 else 1, "relu6", None))
                cin = c
        self.blocks = M.Sequential(*blocks)
        self.head = M.Sequential(M.Conv2d(cin, 1280, 1, bias=False), M.BatchNorm2d(1280))
        self.fc = M.Linear(1280, 1000)

    def forward(self, x):
        x = self.blocks(F.relu6(self.stem(x)))
        x = F.relu6(self.head(x)).mean(axis=3).mean(axis=2)
        return F.softmax(self.fc(x), axis=1)


def make_periodic(model) -> None:
    """Every parameter larger than one block becomes that block's values repeated (kept scale, compressible), and
    every BatchNorm the identity: the dump folds BatchNorm into the convolution weights, and per-channel scales
    would break the period."""
    for _, param in model.named_parameters():
        values = param.numpy().ravel()
        if values.size > PERIOD:
            set_param(param, np.resize(values[:PERIOD], values.size).reshape(param.shape))
    for _, m in model.named_modules():
        if isinstance(m, M.BatchNorm2d):
            set_param(m.weight, np.ones(m.weight.shape))
            set_param(m.bias, np.zeros(m.bias.shape))


PERIOD = 4096


def trace_dump(model, inputs: list[tuple[str, np.ndarray]], path: Path, **options) -> None:
    """Trace ``model`` (eval mode) on ``inputs`` and dump it to ``path`` with the inputs' names (``options``: more
    arguments of ``trace.dump``)."""
    model.eval()

    @trace(symbolic=True, capture_as_const=True)
    def run(*args):
        return model(*args)

    run(*[mge.tensor(value) for _, value in inputs])
    path.parent.mkdir(parents=True, exist_ok=True)
    run.dump(str(path), arg_names=[name for name, _ in inputs], **options)
    print("wrote", path)


def dump(name: str, model, periodic: bool = False) -> None:
    rs = rng(name)
    init_params(model, rs)
    if periodic:
        make_periodic(model)  # BatchNorm's running statistics stay 0 and 1
    else:
        calibrate_bn(model, rs.uniform(0, 1, (4, 3, 224, 224)).astype("float32"))
    trace_dump(model, [("data", rs.uniform(0, 1, (1, 3, 224, 224)).astype("float32"))], OUT / f"{name}.mge")


def dump_quantized(name: str, batch: int) -> None:
    """``q_<name>_b<batch>.mge`` (quantized) and ``q_<name>_float_b<batch>.mge`` (the same float weights)."""
    rs = rng(f"q_{name}")
    full, _ = QUANT_NETS[name]
    shape = (batch, 3, 224, 224)
    for suffix, model in (("", quantized_model(full(), rs, shape, "calibration", batches=2,
                                                   input_range=(0.0, 1.0))), ("_float", None)):
        if model is None:  # the float network with the weights the quantized one started from
            model = full()
            init_params(model, rng(f"q_{name}"))
            calibrate_bn(model, rng(f"q_{name}").uniform(0, 1, (4, 3, 224, 224)).astype("float32"))
        trace_dump(model, [("data", rs.uniform(0, 1, shape).astype("float32"))],
                   OUT / f"q_{name}{suffix}_b{batch}.mge")


def zoo_models() -> dict:
    """name -> (model, [(input name, batch-1 input)]) of the zoo set (tools/zoo_models.py says what each is)."""
    import zoo_models as zoo  # tools/, next to this script (imported only for --zoo)

    rs = np.random.RandomState(20261204)

    def image(h, w):
        return rs.uniform(0, 1, (1, 3, h, w)).astype("float32")

    seq = 48
    return {
        "resnext50": (zoo.ResNet(groups=32, width_per_group=4), [("data", image(224, 224))]),
        "fcos_gn": (zoo.FCOSGN(det, det.BENCH), [("image", rs.randint(0, 256, (1, 3, 320, 320)).astype("float32"))]),
        "deeplabv3plus": (zoo.DeepLabV3Plus(), [("data", image(224, 224))]),
        "simplebaseline": (zoo.SimpleBaseline(), [("data", image(256, 192))]),
        "bert": (zoo.Bert(), [("input_ids", rs.randint(0, 30522, (1, seq)).astype("int32")),
                              ("token_type_ids", (np.arange(seq) >= seq // 2).astype("int32")[None]),
                              ("attention_mask", (np.arange(seq) < seq - 8).astype("int32")[None])]),
        "dcgan": (zoo.DCGANGenerator(), [("noise", rs.normal(0, 1, (1, 128)).astype("float32"))]),
        "yolox_nano": (zoo.YOLOXNano(), [("data", image(416, 416))]),
    }


def dump_zoo(names: list[str] | None = None) -> None:
    """bench/models/zoo/<name>.mge and <name>.npz (its batch-1 inputs, ``input:<name>``): seeded random weights,
    BatchNorm calibrated on a batch of 4 of the models' own kind of input."""
    for name, (model, inputs) in zoo_models().items():
        if names and name not in names:
            continue
        rs = rng(name)
        init_params(model, rs, linear_gain=1.5 if name == "bert" else 1.0)
        if len(inputs) == 1:
            calibrate_bn(model, np.concatenate([inputs[0][1]] * 4) + rs.normal(0, 0.1, (4, *inputs[0][1].shape[1:]))
                            .astype("float32"))
        # MegEngine 1.13's default dump fails on an affine GroupNorm ("bad input shape for polyadic operator:
        # {128}, {1,128,40,40}" in PassConvertToCompatible): keep the operator, as its users have to
        trace_dump(model, inputs, OUT / "zoo" / f"{name}.mge", no_change_graph=name == "fcos_gn")
        np.savez(OUT / "zoo" / f"{name}.npz", **{f"input:{k}": v for k, v in inputs})


if __name__ == "__main__":
    require("tools/make_bench_models.py")
    wanted = {a for a in sys.argv[1:] if a.startswith("--")} or {"--float", "--quantized", "--detect"}
    if "--float" in wanted:
        dump("resnet18", ResNet18Small(widths=(64, 128, 256, 512), num_classes=1000))
        dump("mobilenetv2", MobileNetV2())
    if "--quantized" in wanted:
        for net in ("resnet18", "mobilenetv2"):
            for batch in (1, 16):
                dump_quantized(net, batch)
    if "--detect" in wanted:
        det.make_detectors(OUT / "detect", det.BENCH, all_cases=False)  # .mge and the reference input (.npz case0)
    if "--periodic" in wanted:
        dump("resnet18_periodic", ResNet18Small(widths=(64, 128, 256, 512), num_classes=1000), periodic=True)
    if "--zoo" in wanted:
        dump_zoo([a for a in sys.argv[1:] if not a.startswith("--")])
