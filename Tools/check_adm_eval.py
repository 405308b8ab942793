#!/usr/bin/env python3
"""Compares a `dmilo eval` of an ADM folder with deepinv's DiffUNet (float32 PyTorch) on the same inputs, e.g. at a
size too large for committed fixtures (the full ffhq_10m layout from `bench_torch.py --make-model ffhq-adm`):

  dmilo eval --model M --input x.npy --timestep 999 --out y.npy --cotangent c.npy --input-grad gx.npy
  .venv-tools/bin/python Tools/check_adm_eval.py M x.npy 999 c.npy y.npy gx.npy
Prints max|dmilo - torch| / max|torch| for the output and the input VJP.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_torch  # noqa: E402


def main() -> None:
    folder, xp, t, cp, yp, gp = sys.argv[1:7]
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    with open(os.path.join(folder, "config.json")) as f:
        model = bench_torch.load_adm(folder, json.load(f))
    x = torch.from_numpy(np.load(xp)).requires_grad_(True)
    y = model.forward_diffusion(x, torch.tensor([float(t)] * x.shape[0]))
    (y * torch.from_numpy(np.load(cp))).sum().backward()

    def rel(a, b):
        return float(np.abs(a - b).max() / np.abs(b).max())

    print(json.dumps({"output_rel_error": rel(np.load(yp), y.detach().numpy()),
                      "input_grad_rel_error": rel(np.load(gp), x.grad.numpy())}))


if __name__ == "__main__":
    main()
