#!/usr/bin/env python3
"""PyTorch reference timing for `dmilo bench unet --torch`.

Also: `bench_torch.py --make-model LAYOUT --out DIR` writes a seeded random-weight diffusers folder for benchmarks
(LAYOUT: cifar10 = google/ddpm-cifar10-32 full size, bundled = our 1-channel (48,96,96), small = pyref.md "small",
celebahq256 = google/ddpm-celebahq-256 layout).

Same model folder (config.json + diffusion_pytorch_model.safetensors or model.safetensors, legacy attention names
accepted), same batch, same thread count. Prints one JSON line:
  {"forward_ms": median, "vjp_ms": median forward + backward-to-input, "torch": version, "threads": n, "peak_rss_mb": x}
"""
import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
import safetensors.torch
from diffusers import UNet2DModel

LEGACY = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def load(folder: str) -> UNet2DModel:
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    model = UNet2DModel.from_config(cfg)
    for name in ("diffusion_pytorch_model.safetensors", "model.safetensors"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            break
    sd = safetensors.torch.load_file(path)
    fixed = {}
    for k, v in sd.items():
        if ".attentions." in k:
            for old, new in LEGACY.items():
                k = k.replace(old, new)
        fixed[k] = v.float()
    model.load_state_dict(fixed, strict=True)
    return model.eval()


LAYOUTS = {
    "cifar10": dict(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256),
                    layers_per_block=2, attention_head_dim=None, flip_sin_to_cos=False, freq_shift=1,
                    downsample_padding=0, norm_eps=1e-6,
                    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")),
    "bundled": dict(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(48, 96, 96), layers_per_block=1,
                    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                    up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"), attention_head_dim=48,
                    norm_num_groups=16),
    "small": dict(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(64, 128, 128), layers_per_block=2,
                  down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                  up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"), attention_head_dim=None),
    "celebahq256": dict(sample_size=256, in_channels=3, out_channels=3, block_out_channels=(128, 128, 256, 256, 512, 512),
                        layers_per_block=2, attention_head_dim=None, norm_eps=1e-6, flip_sin_to_cos=False, freq_shift=1,
                        downsample_padding=0,
                        down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
                        up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4),
}


def make_model(layout: str, out: str) -> None:
    torch.manual_seed(0)
    model = UNet2DModel(**LAYOUTS[layout])
    model.save_pretrained(out, safe_serialization=True)
    print(f"{layout}: {sum(p.numel() for p in model.parameters())} params -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-model", choices=sorted(LAYOUTS))
    ap.add_argument("--out")
    ap.add_argument("--model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iterations", type=int, default=10)
    a = ap.parse_args()
    if a.make_model:
        make_model(a.make_model, a.out)
        return
    if not a.model:
        ap.error("--model is required")
    torch.set_num_threads(a.threads)
    model = load(a.model)
    cfg = model.config
    s = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
    g = torch.Generator().manual_seed(0)
    x = torch.randn((a.batch, cfg.in_channels, s, s), generator=g)
    cot = torch.randn((a.batch, cfg.out_channels, s, s), generator=g)
    t = torch.tensor([0.5 if cfg.time_embedding_type == "fourier" else 500.0] * a.batch)

    def fwd():
        with torch.no_grad():
            model(x, t)

    def vjp():
        xg = x.clone().requires_grad_(True)
        y = model(xg, t).sample
        (gx,) = torch.autograd.grad((y * cot).sum(), xg)
        return gx

    def timed(fn):
        fn()
        out = []
        for _ in range(a.iterations):
            st = time.perf_counter()
            fn()
            out.append((time.perf_counter() - st) * 1e3)
        return statistics.median(out)

    for p in model.parameters():
        p.requires_grad_(False)
    res = {"forward_ms": timed(fwd), "vjp_ms": timed(vjp), "torch": torch.__version__, "threads": a.threads,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
