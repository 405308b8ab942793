#!/usr/bin/env python3
"""Denoising check of a diffusers UNet2DModel on held-out Fashion-MNIST test images (PyTorch reference side).

For t in {100, 200, 300}: x_t = sqrt(abar) x0 + sqrt(1-abar) eps; compare the MSE of the model's x0 estimate
(x_t - sqrt(1-abar) eps_hat) / sqrt(abar) with the MSE of the best affine function a*x_t + b fitted on the same images.

  python3 Tools/check_denoising.py --model Models/fashion-mnist-32 --first 100 --count 1000
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--first", type=int, default=100)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from diffusers import UNet2DModel
    torch.set_num_threads(2)
    model = UNet2DModel.from_pretrained(args.model).eval()
    x0 = torch.from_numpy(fashion_mnist.load_split("test")[args.first:args.first + args.count])
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)
    ac = torch.cumprod(1 - betas, 0)
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for t in (100, 200, 300):
            n = torch.randn(x0.shape, generator=g)
            a, s = ac[t].sqrt(), (1 - ac[t]).sqrt()
            xt = a * x0 + s * n
            eps = torch.cat([model(xt[i:i + 250], t).sample for i in range(0, len(xt), 250)])
            mse_model = ((xt - s * eps) / a - x0).pow(2).mean().item()
            X = np.stack([xt.flatten().double().numpy(), np.ones(xt.numel())], 1)
            coef, *_ = np.linalg.lstsq(X, x0.flatten().double().numpy(), rcond=None)
            mse_aff = \
                float((((X @ coef) - x0.flatten().double().numpy()) ** 2).mean())
            print(f"t={t}: model {mse_model:.5f}  best affine {mse_aff:.5f}  ratio {mse_model / mse_aff:.4f}")


if __name__ == "__main__":
    main()
