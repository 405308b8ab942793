#!/usr/bin/env python3
"""Golden fixtures for the Swift UNet2DModel (Tests/DMiloModelTests/Fixtures/<name>/).

For each config: a diffusers UNet2DModel with seeded random weights (every parameter perturbed, so no norm is at
its identity init and no bias is zero), saved as config.json + diffusion_pytorch_model.safetensors in the dtype under
test (F32 / F16 / BF16; legacy attention names for one config), plus
  x.npy (B,C,H,W) float32, timestep.npy (1,) float32, output.npy, cotangent.npy, input_grad.npy
where output = UNet(x, t) and input_grad = d/dx sum(cotangent * output), both computed by torch autograd in float64
from the *stored* (rounded) weights, so the fixtures test our float32 engine against an exact reference.

Run:  /work/.venv-tools/bin/python Tools/make_fixtures.py   (deterministic; ~1 min on 2 cores)
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import torch
import safetensors.torch
from diffusers import UNet2DModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "DMiloModelTests", "Fixtures")

CONFIGS = {
    # (a) google/ddpm-cifar10-32 block layout at reduced widths (128,256,256,256 -> 8,16,16,16).
    "cifar10_layout": dict(
        dtype="F32", batch=2, timestep=537.0,
        cfg=dict(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(8, 16, 16, 16),
                 layers_per_block=2,
                 down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                 attention_head_dim=None, norm_num_groups=4, norm_eps=1e-6, flip_sin_to_cos=False,
                 freq_shift=1, downsample_padding=0, mid_block_scale_factor=1)),
    # (b) our bundled 1-channel 32x32 layout, weights stored as F16.
    "bundled_f16": dict(
        dtype="F16", batch=2, timestep=250.0,
        cfg=dict(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(48, 96, 96),
                 layers_per_block=1,
                 down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                 up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                 attention_head_dim=48, norm_num_groups=16)),
    # (c) scale_shift time conditioning, multi-head attention, sin-first embedding with freq_shift 1, BF16 weights.
    "scale_shift_bf16": dict(
        dtype="BF16", batch=1, timestep=911.0,
        cfg=dict(sample_size=16, in_channels=3, out_channels=3, block_out_channels=(16, 32),
                 layers_per_block=1, down_block_types=("AttnDownBlock2D", "AttnDownBlock2D"),
                 up_block_types=("AttnUpBlock2D", "AttnUpBlock2D"), attention_head_dim=8, norm_num_groups=4,
                 resnet_time_scale_shift="scale_shift", flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-5)),
    # (d) legacy attention tensor names (query/key/value/proj_attn), F32.
    "legacy_attention": dict(
        dtype="F32", batch=2, timestep=3.0, legacy=True,
        cfg=dict(sample_size=16, in_channels=2, out_channels=2, block_out_channels=(16, 24),
                 layers_per_block=1, down_block_types=("AttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "AttnUpBlock2D"), attention_head_dim=8, norm_num_groups=8)),
    # (e) Fourier time embedding (t is a noise level, log taken), centred input, mid scale factor, 6 output channels.
    "fourier_misc": dict(
        dtype="F32", batch=2, timestep=0.7,
        cfg=dict(sample_size=8, in_channels=3, out_channels=6, block_out_channels=(8, 16), layers_per_block=2,
                 down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                 attention_head_dim=None, norm_num_groups=4, time_embedding_type="fourier",
                 center_input_sample=True, mid_block_scale_factor=1.414, norm_eps=1e-6)),
}

TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
LEGACY = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def perturb(model: UNet2DModel, gen: torch.Generator) -> None:
    """Move every parameter away from its init: norm scales ~1±0.2, biases ~N(0, 0.1), weights +5 % noise."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name == "time_proj.weight":  # Fourier frequencies: already random N(0, 16^2)
                continue
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * noise)
            elif name.endswith("bias"):
                p.add_(0.1 * noise)
            else:
                p.add_(0.05 * noise * max(float(p.std()), 0.05))


def make(name: str, spec: dict) -> None:
    out = os.path.join(ROOT, name)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    model = UNet2DModel(**spec["cfg"])
    perturb(model, gen)
    # Round the weights to the storage dtype, then compute the reference in float64 from the rounded values.
    sd = {k: v.detach().to(TORCH_DTYPE[spec["dtype"]]).contiguous() for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()})
    if spec.get("legacy"):
        renamed = {}
        for k, v in sd.items():
            for new, old in LEGACY.items():
                if f".{new}." in k and ".attentions." in k:
                    k = k.replace(f".{new}.", f".{old}.")
            renamed[k] = v
        sd = renamed
    model.save_config(out)
    safetensors.torch.save_file(sd, os.path.join(out, "diffusion_pytorch_model.safetensors"),
                                metadata={"format": "pt"})

    cfg = spec["cfg"]
    b, c, s = spec["batch"], cfg["in_channels"], cfg["sample_size"]
    x = torch.randn((b, c, s, s), generator=gen).to(torch.float32)
    cot = torch.randn((b, cfg["out_channels"], s, s), generator=gen).to(torch.float32)
    t = torch.tensor([spec["timestep"]] * b, dtype=torch.float64)

    m64 = model.double().eval()
    x64 = x.double().requires_grad_(True)
    y = m64(x64, t).sample
    (y * cot.double()).sum().backward()

    np.save(os.path.join(out, "x.npy"), x.numpy())
    np.save(os.path.join(out, "timestep.npy"), np.array([spec["timestep"]], dtype=np.float32))
    np.save(os.path.join(out, "output.npy"), y.detach().numpy().astype(np.float32))
    np.save(os.path.join(out, "cotangent.npy"), cot.numpy())
    np.save(os.path.join(out, "input_grad.npy"), x64.grad.numpy().astype(np.float32))
    n = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n} params, dtype {spec['dtype']}, out max {float(y.abs().max()):.4g}, "
          f"grad max {float(x64.grad.abs().max()):.4g}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    names = sys.argv[1:] or list(CONFIGS)
    for n in names:
        make(n, CONFIGS[n])
