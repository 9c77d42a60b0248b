"""Collect samples into a batch in device memory and run a model on it, as the MegEngine Lite quick start does.

This is the quick start's second program ("TensorBatchCollector for CUDA inference"), written against our package,
with the page's syntax error fixed (``["data", is_host=False]`` is written ``LiteIO("data", is_host=False)``) and
a switch for the device:

    python examples/batch_inference.py tests/fixtures/shufflenet_v2.mge --device cuda
    python examples/batch_inference.py tests/fixtures/shufflenet_v2.mge --device cpu

On ``cuda`` the input tensor and the batch live in GPU memory: each sample is copied to the device once, when it is
collected, and the network reads the batch where it lies. Sample i of round r is a random image drawn with seed
``r * batch + i``, so both devices see the same inputs and print the same scores (to float rounding).
"""

import argparse

import numpy as np

from megenginelite import *  # noqa: F401,F403  (the original's usage: every public name at module level)


def main() -> None:
    parser = argparse.ArgumentParser(description="batch samples on the device and run a .mge model on them")
    parser.add_argument("model", help="path of the .mge model file (its input is named 'data')")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda", help="where the network runs")
    parser.add_argument("--batch", type=int, default=4, help="samples per batch")
    parser.add_argument("--rounds", type=int, default=3, help="how many batches to collect and run")
    args = parser.parse_args()
    device = LiteDeviceType.LITE_CUDA if args.device == "cuda" else LiteDeviceType.LITE_CPU

    # The input "data" is not host memory: the network reads it from the device.
    network = LiteNetwork(config=LiteConfig(device_type=device),
                          io=LiteNetworkIO(inputs=[LiteIO("data", is_host=False)]))
    network.load(args.model)
    data = network.get_io_tensor("data")

    # The model's own input shape, with the batch size of this program.
    layout = data.layout
    shape = list(layout.shapes)[: layout.ndim]
    shape[0] = args.batch
    print("batch shape", shape)
    collector = TensorBatchCollector(shape, dtype=LiteDataType.LITE_FLOAT, device_type=device)

    for round_ in range(args.rounds):
        for i in range(args.batch):
            image = np.random.RandomState(round_ * args.batch + i).uniform(0, 1, shape[1:]).astype("float32")
            slot = collector.collect(image)
            print("collected sample into slot {}".format(slot))

        # The network reads the collected batch in place: no copy.
        data.share_memory_with(collector.get())
        network.forward()
        network.wait()

        scores = network.get_io_tensor(network.get_all_output_name()[0]).to_numpy()
        print("round {} output shape={}, max={}, sum={}, top classes={}".format(
            round_, scores.shape, scores.max(), scores.sum(), scores.argmax(axis=1).tolist()))
        collector.free(range(args.batch))  # every slot free again for the next round's samples


if __name__ == "__main__":
    main()
