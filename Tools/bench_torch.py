#!/usr/bin/env python3
"""PyTorch reference timing for `dmilo bench unet --torch`.

Also: `bench_torch.py --make-model LAYOUT --out DIR` writes a seeded random-weight diffusers folder for benchmarks
(LAYOUT: cifar10 = google/ddpm-cifar10-32 full size, bundled = our 1-channel (48,96,96), small = (64,128,128) with 2 resnets per level,
celebahq256 = google/ddpm-celebahq-256 layout), or, for `--make-model ffhq-adm`, a guided-diffusion (ADM) model at
ffhq_10m's layout (docs/algorithms.md §1.4; 256x256x3, 93.6 M parameters) with seeded random weights, built by deepinv's
DiffUNet (Tools/adm_reference.py) and written through Tools/convert_adm.py (model.safetensors + ADM config.json).

ADM folders (config.json `_class_name` "ADMUNet") are timed with deepinv's DiffUNet at their config, loaded strictly
from the same safetensors; the timestep is the raw train step 500 and the VJP cotangent covers all output channels.

Same model folder (config.json + diffusion_pytorch_model.safetensors or model.safetensors, legacy attention names
accepted), same batch, same thread count. Prints one JSON line:
  {"forward_ms": median, "vjp_ms": median forward + backward-to-input, "torch": version, "threads": n, "peak_rss_mb": x}
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # adm_reference.py, convert_adm.py
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


def load_adm(folder: str, cfg: dict):
    import adm_reference
    model = adm_reference.build(cfg)
    sd = safetensors.torch.load_file(os.path.join(folder, "model.safetensors"))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    missing = [k for k in missing if not k.startswith("sqrt_")]  # deepinv's noise-level buffers, not weights
    if missing or unexpected:
        raise SystemExit(f"{folder}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def make_adm(out: str) -> None:
    """ffhq_10m layout, every weight drawn from a fixed seed, via a .pt state dict and the converter."""
    import tempfile
    import adm_reference
    import convert_adm
    cfg = convert_adm.make_config("ffhq_10m", {})
    model = adm_reference.build({k: v for k, v in cfg.items() if not k.startswith("_")})
    adm_reference.randomise(model, 0)  # no zero-initialised output convs: outputs and gradients are not trivially 0
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("sqrt_")}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "ffhq_adm_random.pt")
        torch.save(sd, ckpt)
        convert_adm.convert(ckpt, out, "ffhq_10m", {}, "f32")
    print(f"ffhq-adm: {sum(v.numel() for v in sd.values())} params -> {out}")


def make_model(layout: str, out: str) -> None:
    if layout == "ffhq-adm":
        make_adm(out)
        return
    torch.manual_seed(0)
    model = UNet2DModel(**LAYOUTS[layout])
    model.save_pretrained(out, safe_serialization=True)
    print(f"{layout}: {sum(p.numel() for p in model.parameters())} params -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-model", choices=sorted(LAYOUTS) + ["ffhq-adm"])
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
    folder = a.model if os.path.isdir(a.model) else os.path.dirname(a.model)
    with open(os.path.join(folder, "config.json")) as f:
        raw = json.load(f)
    if raw.get("_class_name") == "ADMUNet":
        model = load_adm(folder, raw)
        s, cin, cout = raw["image_size"], raw["in_channels"], raw["out_channels"]
        t = torch.tensor([500.0] * a.batch)
        run = lambda inp: model.forward_diffusion(inp, t)  # noqa: E731  (guided-diffusion model(x, t))
    else:
        model = load(a.model)
        cfg = model.config
        s = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
        cin, cout = cfg.in_channels, cfg.out_channels
        t = torch.tensor([0.5 if cfg.time_embedding_type == "fourier" else 500.0] * a.batch)
        run = lambda inp: model(inp, t).sample  # noqa: E731
    g = torch.Generator().manual_seed(0)
    x = torch.randn((a.batch, cin, s, s), generator=g)
    cot = torch.randn((a.batch, cout, s, s), generator=g)

    def fwd():
        with torch.no_grad():
            run(x)

    def vjp():
        xg = x.clone().requires_grad_(True)
        y = run(xg)
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
