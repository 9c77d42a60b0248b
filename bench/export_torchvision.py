"""Export torchvision's versions of the benchmark networks to ONNX, as a PyTorch user would, for
``bench_latency.py --exported``: plain ONNX Runtime on the graph ``torch.onnx.export`` writes, beside ours.

Needs torch and torchvision (not project dependencies; e.g. a separate venv with
``pip install torch==2.14.1 torchvision==0.29.1``)::

    /tmp/tv/bin/python bench/export_torchvision.py            # into bench/models/torchvision/

Weights are torchvision's random initialization: kernel times do not depend on the values. Each network is
exported with static shapes (as ``torch.onnx.export`` does by default) at batch 1 and 16: ``<name>_b<batch>.onnx``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision

OUT = Path(__file__).resolve().parent / "models" / "torchvision"
BATCHES = (1, 16)
NETWORKS = {  # torchvision name -> the bench model it stands beside
    "shufflenet_v2_x1_0": "tests/fixtures/shufflenet_v2.mge",
    "resnet18": "bench/models/resnet18.mge",
    "mobilenet_v2": "bench/models/mobilenetv2.mge",
    "resnext50_32x4d": "bench/models/zoo/resnext50.mge",
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[1:] or NETWORKS:
        network = getattr(torchvision.models, name)(weights=None).eval()
        for batch in BATCHES:
            path = OUT / f"{name}_b{batch}.onnx"
            torch.onnx.export(network, torch.rand(batch, 3, 224, 224), str(path), input_names=["data"],
                              output_names=["out"], opset_version=17, dynamo=False)
            print(f"wrote {path} (beside {NETWORKS.get(name, '?')})")


if __name__ == "__main__":
    main()
