#!/usr/bin/env python3
"""Fixtures for Tests/DMiloImageTests (DMiloImage: PNG I/O and PSNR/SSIM).

Writes into Tests/DMiloImageTests/Fixtures/:
  metrics.json   pairs of model-unit images (C,H,W) with scikit-image's PSNR / SSIM of their [0,1] versions
  png/*.png      PNG files written by pypng (not libpng) in the layouts the Swift reader must accept
  png.json       the raw sample values each PNG holds (alpha dropped), or "error" for files it must refuse

Reference definitions (must match Sources/DMiloImage/Metrics.swift):
  x01 = (clip(x, -1, 1) + 1) / 2                     both images, in float64
  psnr = skimage.metrics.peak_signal_noise_ratio(t01, e01, data_range=1)
  ssim = skimage.metrics.structural_similarity(t01, e01, data_range=1, win_size=7, gaussian_weights=False,
                                               use_sample_covariance=True, K1=0.01, K2=0.03,
                                               channel_axis=0 for C>1, a 2-D image for C==1)
Run: /work/.venv-tools/bin/python Tools/make_image_fixtures.py   (deterministic: fixed seeds)
"""
import json
import math
import pathlib

import numpy as np
import png  # pypng
import scipy.ndimage
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "DMiloImageTests" / "Fixtures"


def smooth_image(rng, c, h, w, sigma=2.0):
    """An image-like field in model units: blurred noise stretched to about [-0.9, 0.9]."""
    x = scipy.ndimage.gaussian_filter(rng.standard_normal((c, h, w)), sigma=(0, sigma, sigma))
    x = x / (np.abs(x).max() + 1e-12) * 0.9
    return x.astype(np.float32)


def reference_metrics(truth, estimate):
    t = (np.clip(truth.astype(np.float64), -1, 1) + 1) / 2
    e = (np.clip(estimate.astype(np.float64), -1, 1) + 1) / 2
    psnr = peak_signal_noise_ratio(t, e, data_range=1)
    kw = dict(data_range=1, win_size=7, gaussian_weights=False, use_sample_covariance=True, K1=0.01, K2=0.03)
    if t.shape[0] == 1:
        ssim = structural_similarity(t[0], e[0], **kw)
    else:
        ssim = structural_similarity(t, e, channel_axis=0, **kw)
    return (None if math.isinf(psnr) else float(psnr)), float(ssim)


def metric_pairs():
    rng = np.random.default_rng(20251127)
    pairs = []

    def add(name, truth, estimate):
        psnr, ssim = reference_metrics(truth, estimate)
        pairs.append({
            "name": name,
            "shape": list(truth.shape),
            "truth": [float(v) for v in truth.ravel()],
            "estimate": [float(v) for v in estimate.ravel()],
            "psnr": psnr,  # null = +infinity (identical images)
            "ssim": ssim,
        })

    t = smooth_image(rng, 1, 32, 32)
    add("gray_32x32_noise0.1", t, (t + 0.1 * rng.standard_normal(t.shape)).astype(np.float32))
    add("gray_32x32_noise0.5_clamped", t, (t + 0.5 * rng.standard_normal(t.shape)).astype(np.float32))
    t = smooth_image(rng, 3, 24, 40)
    add("rgb_24x40_noise0.05", t, (t + 0.05 * rng.standard_normal(t.shape)).astype(np.float32))
    add("rgb_24x40_shifted", t, np.roll(t, 1, axis=2).copy())
    c = np.full((1, 16, 16), 0.25, np.float32)
    add("gray_constant_identical", c, c.copy())
    c = np.full((3, 12, 12), -0.5, np.float32)
    add("rgb_constant_vs_noise", c, (c + 0.2 * rng.standard_normal(c.shape)).astype(np.float32))
    t = smooth_image(rng, 1, 7, 9, sigma=1.0)
    add("gray_7x9_minimum", t, (t + 0.1 * rng.standard_normal(t.shape)).astype(np.float32))
    return pairs


def png_fixtures():
    rng = np.random.default_rng(7)
    d = OUT / "png"
    d.mkdir(parents=True, exist_ok=True)
    entries = []

    def write(name, rows, expected, bit_depth, channels, error=None, **kw):
        """rows: list of flat rows as pypng wants them; expected: (H, W, C) raw samples, alpha dropped."""
        path = d / name
        with open(path, "wb") as f:
            h = len(rows)
            w = kw.pop("width")
            png.Writer(width=w, height=h, bitdepth=kw.pop("bitdepth", bit_depth), **kw).write(f, rows)
        e = {"file": "png/" + name, "width": w, "height": h}
        if error:
            e["error"] = error
        else:
            e.update(channels=channels, bit_depth=bit_depth, samples=[int(v) for v in expected.ravel()])
        entries.append(e)

    # 16-bit grey: extremes and values whose low byte matters (catches 16->8->16 paths and gamma tables)
    g16 = np.array([[0, 1, 2, 255, 256], [12345, 32767, 32768, 32769, 40000], [65533, 65534, 65535, 4660, 22136]],
                   np.uint16)
    write("gray16.png", [list(r) for r in g16], g16[..., None], 16, 1, width=5, greyscale=True)
    rgb16 = rng.integers(0, 65536, (3, 4, 3), dtype=np.uint16)
    rgb16[0, 0] = [0, 65535, 1]
    write("rgb16.png", [list(r.ravel()) for r in rgb16], rgb16, 16, 3, width=4, greyscale=False)
    # Same samples, but the file declares gAMA 1/2.2: libpng's simplified reader would convert to linear light;
    # the convention (INTERFACE: v -> 2v/(2^b-1)-1) wants the stored samples untouched.
    write("rgb16_gamma.png", [list(r.ravel()) for r in rgb16], rgb16, 16, 3, width=4, greyscale=False,
          gamma=0.45455)
    g16g = rng.integers(0, 65536, (4, 3), dtype=np.uint16)
    write("gray16_gamma1.png", [list(r) for r in g16g], g16g[..., None], 16, 1, width=3, greyscale=True, gamma=1.0)
    rgba16 = rng.integers(0, 65536, (2, 3, 4), dtype=np.uint16)
    rgba16[..., 3] = 65535  # opaque: colour samples are recoverable exactly
    write("rgba16_opaque.png", [list(r.ravel()) for r in rgba16], rgba16[..., :3], 16, 3, width=3,
          greyscale=False, alpha=True)
    ga16 = rng.integers(0, 65536, (2, 2, 2), dtype=np.uint16)
    ga16[0, 0, 1] = 1000  # partly transparent: libpng premultiplies 16-bit alpha, raw values are lost -> refuse
    write("ga16_transparent.png", [list(r.ravel()) for r in ga16], None, 16, 1, error="transparent16",
          width=2, greyscale=True, alpha=True)
    rgba8 = rng.integers(0, 256, (3, 2, 4), dtype=np.uint8)
    rgba8[0, 0, 3] = 0
    rgba8[1, 1, 3] = 100
    write("rgba8.png", [list(r.ravel()) for r in rgba8], rgba8[..., :3], 8, 3, width=2, greyscale=False, alpha=True)
    ga8 = rng.integers(0, 256, (2, 4, 2), dtype=np.uint8)
    write("ga8.png", [list(r.ravel()) for r in ga8], ga8[..., :1], 8, 1, width=4, greyscale=True, alpha=True)
    palette = [(255, 0, 0), (0, 128, 0), (1, 2, 3), (250, 251, 252), (17, 34, 51)]
    idx = rng.integers(0, len(palette), (4, 5))
    write("palette8.png", [list(r) for r in idx], np.array(palette, np.uint8)[idx], 8, 3, width=5, palette=palette)
    g4 = rng.integers(0, 16, (3, 6))
    # Sub-byte grey is widened by bit replication (v * 17 for 4 bits), which is the same number in model units.
    write("gray4.png", [list(r) for r in g4], (g4 * 17)[..., None], 8, 1, bitdepth=4, width=6, greyscale=True)
    g8 = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    write("gray8_interlaced.png", [list(r) for r in g8], g8[..., None], 8, 1, width=11, greyscale=True,
          interlace=True)
    # 8-bit samples declared linear (gAMA 1.0): libpng would re-encode them to sRGB unless the chunk is ignored.
    g8g = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    write("gray8_gamma1.png", [list(r) for r in g8g], g8g[..., None], 8, 1, width=6, greyscale=True, gamma=1.0)
    rgb16i = rng.integers(0, 65536, (10, 9, 3), dtype=np.uint16)
    write("rgb16_interlaced.png", [list(r.ravel()) for r in rgb16i], rgb16i, 16, 3, width=9, greyscale=False,
          interlace=True)
    g1 = rng.integers(0, 2, (3, 10))
    write("gray1.png", [list(r) for r in g1], (g1 * 255)[..., None], 8, 1, bitdepth=1, width=10, greyscale=True)
    rgb8 = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    write("rgb8.png", [list(r.ravel()) for r in rgb8], rgb8, 8, 3, width=7, greyscale=False)
    return entries


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {"generator": "Tools/make_image_fixtures.py", "skimage": skimage.__version__, "numpy": np.__version__,
            "pypng": png.__version__}
    (OUT / "metrics.json").write_text(json.dumps({"meta": meta, "pairs": metric_pairs()}) + "\n")
    (OUT / "png.json").write_text(json.dumps({"meta": meta, "files": png_fixtures()}, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
