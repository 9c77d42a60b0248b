"""Dump full-size benchmark models (ResNet-18, MobileNetV2 1.0, 224x224; detectors with a ResNet-18 backbone at
320x320 into bench/models/detect/) with the real MegEngine 1.13.

    PY="$(cd .. && shared/tools/real-megengine)"; "$PY" bench/make_bench_models.py

They are too big for the repository (bench/models/ is ignored): the fixtures keep reduced widths, the speed
targets are about the real sizes. Weights are seeded random with calibrated BatchNorm (the fixtures' helpers).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT]  # keep our package from shadowing the real one
sys.path.insert(0, str(ROOT / "tools"))

import make_detect_fixtures as det  # noqa: E402
import make_fixtures as fx  # noqa: E402  (the fixture script's model classes and helpers)

OUT = ROOT / "bench" / "models"


class MobileNetV2(fx.M.Module):
    """MobileNetV2 1.0 (expansion 6, standard channel plan, ReLU6, 1000 classes)."""

    CFG = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self):
        super().__init__()
        M = fx.M
        self.stem = M.Sequential(M.Conv2d(3, 32, 3, 2, 1, bias=False), M.BatchNorm2d(32))
        blocks, cin = [], 32
        for t, c, n, s in self.CFG:
            for i in range(n):
                blocks.append(fx.InvertedResidual(cin, c, t, s if i == 0 else 1, "relu6", None))
                cin = c
        self.blocks = M.Sequential(*blocks)
        self.head = M.Sequential(M.Conv2d(cin, 1280, 1, bias=False), M.BatchNorm2d(1280))
        self.fc = M.Linear(1280, 1000)

    def forward(self, x):
        F = fx.F
        x = self.blocks(F.relu6(self.stem(x)))
        x = F.relu6(self.head(x)).mean(axis=3).mean(axis=2)
        return F.softmax(self.fc(x), axis=1)


def dump(name: str, model) -> None:
    rs = fx.rng(name)
    fx.init_params(model, rs)
    fx.calibrate_bn(model, rs.uniform(0, 1, (4, 3, 224, 224)).astype("float32"))
    model.eval()

    @fx.trace(symbolic=True, capture_as_const=True)
    def run(data):
        return model(data)

    run(fx.mge.tensor(rs.uniform(0, 1, (1, 3, 224, 224)).astype("float32")))
    OUT.mkdir(exist_ok=True)
    run.dump(str(OUT / f"{name}.mge"), arg_names=["data"])
    print("wrote", OUT / f"{name}.mge")


if __name__ == "__main__":
    fx._import_megengine()
    dump("resnet18", fx.ResNet18Small(widths=(64, 128, 256, 512), num_classes=1000))
    dump("mobilenetv2", MobileNetV2())
    det.make_detectors(OUT / "detect", det.BENCH, all_cases=False)  # .mge and the reference input (.npz case0)
