#!/usr/bin/env python3
"""PyTorch reference timing for `dmilo bench unet --torch`.

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iterations", type=int, default=10)
    a = ap.parse_args()
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
