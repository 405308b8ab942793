#!/usr/bin/env python3
"""Reference values for Tests/DMiloOperatorsTests (numpy only, deterministic).

Writes Tests/DMiloOperatorsTests/Fixtures/operator_fixtures.json:
  bicubic:  MATLAB imresize(..., 1/f, 'bicubic') weight matrices (antialiased), computed with a direct port of
            MATLAB's `contributions()` (1-based coordinates, ceil(width)+2 taps, mirrored indices), independent of
            the Swift closed form; plus one 2-D image resized with them (checks H-then-W orientation).
  blur:     per-channel correlation with numpy.pad(mode="reflect"), kernel centre k//2, kernel normalised to sum 1,
            for odd, even and rectangular non-symmetric kernels.
  box_sr:   mean of f x f blocks.
  gaussian: outer product of exp(-(j - s//2)^2 / (2 sigma^2)), normalised.
Run: /work/.venv-tools/bin/python Tools/make_operator_fixtures.py
"""
import json
import math
import os

import numpy as np


def cubic(x):
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def matlab_contributions(in_length, out_length, scale, kernel_width=4.0):
    """MATLAB imresize contributions() for scale < 1 with antialiasing; returns the dense (out, in) matrix."""
    h = lambda x: scale * cubic(scale * x)
    kernel_width = kernel_width / scale
    x = np.arange(1, out_length + 1, dtype=np.float64)           # output coordinates, 1-based
    u = x / scale + 0.5 * (1 - 1 / scale)                         # their position in input space
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]                   # 1-based input indices
    weights = h(u[:, None] - ind)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    ind = aux[np.mod(ind - 1, aux.size).astype(int)] - 1         # mirrored, 0-based
    m = np.zeros((out_length, in_length))
    for o in range(out_length):
        for t in range(p):
            m[o, ind[o, t]] += weights[o, t]
    return m


def reflect_correlate(x, k):
    k = k / k.sum()
    kh, kw = k.shape
    c, hh, ww = x.shape
    out = np.zeros_like(x)
    for ch in range(c):
        xp = np.pad(x[ch], ((kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2)), mode="reflect")
        for i in range(hh):
            for j in range(ww):
                out[ch, i, j] = np.sum(k * xp[i:i + kh, j:j + kw])
    return out


def main():
    rng = np.random.default_rng(20251127)
    fx = {}

    fx["bicubic"] = []
    for length, f in [(16, 2), (10, 2), (16, 4), (12, 4), (4, 4), (8, 2)]:
        m = matlab_contributions(length, length // f, 1.0 / f)
        fx["bicubic"].append({"length": length, "factor": f, "matrix": m.ravel().tolist()})
    img = rng.standard_normal((2, 8, 12))
    mh, mw = matlab_contributions(8, 4, 0.5), matlab_contributions(12, 6, 0.5)
    fx["bicubic_image"] = {"shape": [2, 8, 12], "factor": 2, "x": img.ravel().tolist(),
                           "y": np.einsum("oh,chw,pw->cop", mh, img, mw).ravel().tolist()}

    fx["blur"] = []
    x = rng.standard_normal((2, 7, 9))
    for kh, kw in [(3, 3), (4, 4), (5, 5), (2, 3), (6, 6)]:
        k = rng.uniform(0.0, 1.0, (kh, kw))
        k[0, kw - 1] -= 0.3                                       # a negative entry and no symmetry
        fx["blur"].append({"shape": [2, 7, 9], "kernel_shape": [kh, kw], "x": x.ravel().tolist(),
                           "kernel": k.ravel().tolist(), "y": reflect_correlate(x, k).ravel().tolist()})

    xb = rng.standard_normal((3, 8, 12))
    fx["box_sr"] = []
    for f in (2, 4):
        y = xb.reshape(3, 8 // f, f, 12 // f, f).mean(axis=(2, 4))
        fx["box_sr"].append({"shape": [3, 8, 12], "factor": f, "x": xb.ravel().tolist(), "y": y.ravel().tolist()})

    size, sigma = 7, 1.3
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    g2 = np.outer(g, g)
    fx["gaussian"] = {"size": size, "sigma": sigma, "kernel": (g2 / g2.sum()).ravel().tolist()}

    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "DMiloOperatorsTests", "Fixtures", "operator_fixtures.json")
    with open(out, "w") as fh:
        json.dump(fx, fh)
    # sanity print: the x4 interior weights of docs/algorithms.md §6.1
    m = matlab_contributions(16, 4, 0.25)
    print("x4 row 2 taps 2..17:", np.round(m[2, 2:16], 6))


if __name__ == "__main__":
    main()
