#!/usr/bin/env python3
"""Golden fixtures for the Swift ADMUNet (Tests/DMiloModelTests/Fixtures/<name>/), against a reference we did not
write: PyPI deepinv's DiffUNet (guided-diffusion's UNetModel via DiffPIR; see adm_reference.py).

For each config: deepinv's network with every weight re-initialised from a fixed seed (PyTorch default init for every
conv / linear, including the ones guided-diffusion zero-initialises — out.2, every ResBlock's out_layers.3 and every
attention proj_out — so no block is the identity; GroupNorm scales ~1 +- 0.2 and biases ~N(0, 0.1)), saved as a
guided-diffusion .pt state dict, converted by Tools/convert_adm.py, and for the two larger ones quantised by
dmilo-quantize (--policy all: Q8_0 where rows allow, else F16) to stay near 6 MB. The reference output and input VJP are then computed
by deepinv's code in float64 from the weights *as stored* (the GGUF tensors are read back and dequantised with PyPI
gguf, the reference GGUF implementation), so the fixtures test our float32 engine, not the rounding:
  model.gguf or config.json + model.safetensors, x.npy (B,C,H,W), timestep.npy (1,), output.npy (B,out,H,W),
  cotangent.npy (B,out,H,W), input_grad.npy = d/dx sum(cotangent * output)

Run (needs .build/release/dmilo-quantize):
  swift build -c release --product dmilo-quantize && .venv-tools/bin/python Tools/make_adm_fixtures.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import safetensors.torch
from gguf import GGUFReader
from gguf.quants import dequantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adm_reference  # noqa: E402
import convert_adm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "Tests", "DMiloModelTests", "Fixtures")
QUANTIZE = os.path.join(HERE, "..", ".build", "release", "dmilo-quantize")

FFHQ_FLAGS = dict(num_res_blocks=1, channel_mult=[1, 1, 2, 2, 4, 4], num_heads=4, num_head_channels=64,
                  num_heads_upsample=-1, use_scale_shift_norm=True, resblock_updown=True, learn_sigma=True,
                  use_new_attention_order=False, in_channels=3)

CONFIGS = {
    # (a) ffhq_10m's layout (docs/algorithms.md §1.4: 6 levels (1,1,2,2,4,4), 1 res block, attention at image/16,
    #     64 channels per head, scale-shift norm, resblock up/down, learn_sigma, legacy qkv order) at the smallest
    #     width GroupNorm32 allows (num_channels 32 instead of 128) and 64x64 (attention at 4 px = image/16).
    "adm_ffhq_small": dict(store="q8_0", batch=1, timestep=999.0,
                           cfg=dict(FFHQ_FLAGS, image_size=64, num_channels=32, attention_resolutions=[4])),
    # (b) full width (num_channels 128, 64-channel heads, time MLP 512 wide) at 64x64: two levels of one res block
    #     so the Q8_0 file stays ~6 MB; attention at 32 px (1024 tokens), the new qkv order (QKVAttention).
    "adm_wide128": dict(store="q8_0", batch=1, timestep=537.0,
                        cfg=dict(FFHQ_FLAGS, image_size=64, num_channels=128, channel_mult=[1, 1],
                                 attention_resolutions=[32], use_new_attention_order=True)),
    # (c) the other branches: default (additive) time conditioning, conv Downsample/Upsample (`op` / `conv`),
    #     heads by count with a different count in the output blocks, 2 res blocks, two attention levels, no
    #     learn_sigma, batch 2, written by the converter as F16 safetensors (no quantiser in the path).
    "adm_variants_f16": dict(store="f16", batch=2, timestep=3.0,
                             cfg=dict(in_channels=3, image_size=16, num_channels=32, num_res_blocks=2,
                                      channel_mult=[1, 2, 2], attention_resolutions=[8, 4], num_heads=2,
                                      num_head_channels=-1, num_heads_upsample=4, use_scale_shift_norm=False,
                                      resblock_updown=False, learn_sigma=False, use_new_attention_order=False)),
}


def gguf_state_dict(path: str, shapes: dict) -> dict:
    """Every tensor of a dmilo GGUF file as float32, dequantised by PyPI gguf, in its PyTorch shape."""
    out = {}
    for t in GGUFReader(path).tensors:
        v = dequantize(t.data, t.tensor_type)
        out[t.name] = torch.from_numpy(np.array(v, dtype=np.float32)).reshape(shapes[t.name])
    return out


def make(name: str, spec: dict) -> None:
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        os.remove(os.path.join(out, f))
    cfg = dict(spec["cfg"], class_cond=False)
    model = adm_reference.build(cfg)
    adm_reference.randomise(model, sum(map(ord, name)))
    sd = model.state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith("sqrt_")}  # deepinv's noise-level buffers, not weights
    shapes = {k: list(v.shape) for k, v in sd.items()}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "ckpt.pt")
        torch.save(sd, ckpt)
        folder = out if spec["store"] == "f16" else os.path.join(tmp, "converted")
        convert_adm.convert(ckpt, folder, None, cfg, "f16" if spec["store"] == "f16" else "f32")
        if spec["store"] == "q8_0":
            gguf = os.path.join(out, "model.gguf")
            # --policy all: the time MLP too (F32 by default; 1.3 MB at width 128), biases/norms F16: size only
            subprocess.run([QUANTIZE, folder, "--type", "q8_0", "--policy", "all", "--output", gguf, "--force"], check=True,
                           stdout=subprocess.DEVNULL)
            stored = gguf_state_dict(gguf, shapes)
        else:
            stored = safetensors.torch.load_file(os.path.join(folder, "model.safetensors"))  # the F16 values
    missing = set(sd) - set(stored)
    if missing:
        raise SystemExit(f"{name}: stored file lacks {sorted(missing)[:5]}")
    model.load_state_dict({k: stored[k].float() for k in sd}, strict=False)

    b, c, s, oc = spec["batch"], cfg["in_channels"], cfg["image_size"], cfg["in_channels"] * (2 if cfg["learn_sigma"] else 1)
    gen = torch.Generator().manual_seed(sum(map(ord, name)) + 7)
    x = torch.randn((b, c, s, s), generator=gen)
    cot = torch.randn((b, oc, s, s), generator=gen)
    m64 = adm_reference.to_float64(model)
    x64 = x.double().requires_grad_(True)
    t = torch.tensor([spec["timestep"]] * b, dtype=torch.float64)
    y = adm_reference.eps_forward(m64, x64, t)
    (y * cot.double()).sum().backward()

    np.save(os.path.join(out, "x.npy"), x.numpy())
    np.save(os.path.join(out, "timestep.npy"), np.array([spec["timestep"]], dtype=np.float32))
    np.save(os.path.join(out, "output.npy"), y.detach().numpy().astype(np.float32))
    np.save(os.path.join(out, "cotangent.npy"), cot.numpy())
    np.save(os.path.join(out, "input_grad.npy"), x64.grad.numpy().astype(np.float32))
    n = sum(v.numel() for v in sd.values())
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{name}: {n} params, stored {spec['store']}, fixture {size / 1e6:.2f} MB, "
          f"out max {float(y.detach().abs().max()):.4g}, grad max {float(x64.grad.abs().max()):.4g}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    names = sys.argv[1:] or list(CONFIGS)
    for n in names:
        make(n, CONFIGS[n])
