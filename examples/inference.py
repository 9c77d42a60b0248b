"""Run a MegEngine model once on a random image and print a summary of its first output.

This is the first program of the MegEngine Lite Python quick start, written against our package:
    python examples/inference.py tests/fixtures/shufflenet_v2.mge
The input is drawn from numpy's global random generator seeded with --seed (default 0), so two runtimes
given the same file print the same numbers.
"""

import argparse

import numpy as np

from megenginelite import *  # noqa: F401,F403  (the original's usage: every public name at module level)


def main() -> None:
    parser = argparse.ArgumentParser(description="run a .mge model with megenginelite")
    parser.add_argument("input", help="path of the .mge model file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input image")
    args = parser.parse_args()

    network = LiteNetwork()
    network.load(args.input)

    # Fill the "data" input with a random 224x224 RGB image in [0, 1).
    image = network.get_io_tensor("data")
    np.random.seed(args.seed)
    pixels = np.random.uniform(0, 1, (1, 3, 224, 224)).astype("float32")
    image.set_data_by_copy(pixels)

    network.forward()
    network.wait()

    first_output = network.get_io_tensor(network.get_all_output_name()[0])
    scores = first_output.to_numpy()
    print("shufflenet output max={}, sum={}".format(scores.max(), scores.sum()))


if __name__ == "__main__":
    main()
