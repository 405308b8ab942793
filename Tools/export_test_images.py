#!/usr/bin/env python3
"""Write held-out Fashion-MNIST test images as 8-bit 32x32 PNGs (the sensor-side view of Tools/fashion_mnist.py).

Convention for the whole project: test-split images 0..99 may be used for tuning solver defaults; images from 100 on
are for tests, benchmarks and the demo only.

  python3 Tools/export_test_images.py --first 100 --count 32 --out Tests/Data/fashion-mnist-test
"""
import argparse
import os
import sys

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--first", type=int, default=100)
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    imgs = fashion_mnist.padded_u8("test")
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.first, args.first + args.count):
        Image.fromarray(imgs[i], mode="L").save(os.path.join(args.out, f"test-{i:05d}.png"))


if __name__ == "__main__":
    main()
