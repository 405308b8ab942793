#!/usr/bin/env python3
"""Read a dmilo GGUF file with PyPI `gguf` (llama.cpp's reference reader) and compare every tensor with its source.

  python3 Tools/check_gguf.py Models/fashion-mnist-32/model-q8_0.gguf Models/fashion-mnist-32

Checks: the metadata dmilo promises (architecture, config JSON, schedule, image shape, source sha256, quantisation
version when anything is Q8_0), every source tensor present with its shape (flattened Q8_0 convolutions carry their
PyTorch shape in dmilo.shape.NAME), and the dequantised values within the type's tolerance of the float32 source
(F32 exact; F16 rel. RMS ≤ 1e-3; Q8_0 rel. RMS ≤ 1e-2). Exits non-zero on any mismatch.
"""
import hashlib
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import load_file


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def main():
    gguf_path, folder = sys.argv[1], sys.argv[2]
    src_file = os.path.join(folder, "diffusion_pytorch_model.safetensors")
    if not os.path.exists(src_file):
        src_file = os.path.join(folder, "model.safetensors")
    src = load_file(src_file)
    r = GGUFReader(gguf_path)
    problems = []
    if field(r, "general.architecture") != "dmilo.unet2d":
        problems.append("general.architecture")
    cfg = json.loads(field(r, "dmilo.config_json"))
    if cfg != json.load(open(os.path.join(folder, "config.json"))):
        problems.append("dmilo.config_json differs from config.json")
    for k in ("dmilo.schedule.num_train_timesteps", "dmilo.schedule.beta_start", "dmilo.schedule.beta_end",
              "dmilo.schedule.beta_schedule", "dmilo.schedule.prediction_type", "dmilo.image_shape", "dmilo.tool_version"):
        if field(r, k) is None:
            problems.append(f"missing {k}")
    if field(r, "dmilo.source_sha256") != hashlib.sha256(open(src_file, "rb").read()).hexdigest():
        problems.append("dmilo.source_sha256 does not match the source file")
    types = {}
    seen = set()
    for t in r.tensors:
        seen.add(t.name)
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        ref = src.get(t.name)
        if ref is None:
            problems.append(f"{t.name}: not in the source")
            continue
        ref = ref.astype(np.float64)
        shape = field(r, "dmilo.shape." + t.name)
        shape = list(shape) if shape is not None else list(reversed([int(d) for d in t.shape]))
        if shape != list(ref.shape):
            problems.append(f"{t.name}: shape {shape} vs source {list(ref.shape)}")
            continue
        vals = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(ref.shape)
        err = np.sqrt(((vals - ref) ** 2).sum() / max((ref ** 2).sum(), 1e-30))
        tol = {GGMLQuantizationType.F32: 0.0, GGMLQuantizationType.F16: 1e-3, GGMLQuantizationType.Q8_0: 1e-2}[t.tensor_type]
        if err > tol:
            problems.append(f"{t.name}: {t.tensor_type.name} rel. RMS error {err:.2e} > {tol}")
        if t.data_offset % 32:
            problems.append(f"{t.name}: data offset {t.data_offset} not 32-byte aligned")
    for name in src:
        if name not in seen:
            problems.append(f"{name}: missing from the GGUF file")
    if "Q8_0" in types and field(r, "general.quantization_version") != 2:
        problems.append("general.quantization_version must be 2 when anything is Q8_0")
    print(f"{gguf_path}: {len(r.tensors)} tensors ({', '.join(f'{v} {k}' for k, v in sorted(types.items()))}), "
          f"{len(r.fields)} metadata keys")
    for p in problems:
        print("MISMATCH", p)
    print("OK" if not problems else f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
