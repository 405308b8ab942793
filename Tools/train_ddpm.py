#!/usr/bin/env python3
"""Train dmilo's bundled Fashion-MNIST DDPM (diffusers UNet2DModel, epsilon prediction).

Schedule = what every dmilo solver assumes: 1000 train steps, linear betas 1e-4 -> 0.02.
Data = Tools/fashion_mnist.py (60k train split only; the test split stays held out).
Resumable: `--state DIR` holds model/EMA/Adam moments + meta.json and is reloaded when present; the EMA weights
are written as a diffusers folder (`--out`) at every checkpoint, so an interrupted run still leaves a usable model.

  python3 Tools/train_ddpm.py --out Models/fashion-mnist-32 --state .train-state --minutes 60
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist  # noqa: E402

# The bundled architecture: 2.61 M parameters, attention at 16x16 and 8x8 (and in the mid block).
MODEL_CONFIG = dict(
    sample_size=32,
    in_channels=1,
    out_channels=1,
    layers_per_block=1,
    block_out_channels=(48, 96, 96),
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=48,
    norm_num_groups=16,
    dropout=0.0,
)


def linear_alphas_cumprod(device):
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0).to(device)


def save_state(state_dir, model, ema, opt, meta):
    from safetensors.torch import save_file
    os.makedirs(state_dir, exist_ok=True)
    params = [p for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    m, v = {}, {}
    for n, p in zip(names, params):
        s = opt.state.get(p, {})
        if "exp_avg" in s:
            m[n] = s["exp_avg"].detach().float().cpu().contiguous()
            v[n] = s["exp_avg_sq"].detach().float().cpu().contiguous()
    save_file({k: t.detach().float().cpu().contiguous() for k, t in model.state_dict().items()},
              os.path.join(state_dir, "model.safetensors"))
    save_file(m, os.path.join(state_dir, "adam_m.safetensors"))
    save_file(v, os.path.join(state_dir, "adam_v.safetensors"))
    with open(os.path.join(state_dir, "meta.json.tmp"), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(os.path.join(state_dir, "meta.json.tmp"), os.path.join(state_dir, "meta.json"))


def load_state(state_dir, model, ema, opt, device):
    from safetensors.torch import load_file
    model.load_state_dict(load_file(os.path.join(state_dir, "model.safetensors"), device=str(device)))
    with open(os.path.join(state_dir, "meta.json")) as f:
        meta = json.load(f)
    m = load_file(os.path.join(state_dir, "adam_m.safetensors"), device=str(device))
    v = load_file(os.path.join(state_dir, "adam_v.safetensors"), device=str(device))
    for n, p in model.named_parameters():
        if n in m:
            opt.state[p] = {"step": torch.tensor(float(meta["step"])), "exp_avg": m[n], "exp_avg_sq": v[n]}
    return meta


def affine_ratio(model, x0, ac, ts, device, seed=0):
    """MSE of the model's x0 estimate / MSE of the best affine function of x_t (fitted on the same images)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = {}
    model.eval()
    with torch.no_grad():
        for t in ts:
            noise = torch.randn(x0.shape, generator=g).to(device)
            a = ac[t].sqrt(); s = (1 - ac[t]).sqrt()
            xt = a * x0 + s * noise
            eps = torch.cat([model(xt[i:i + 500], torch.full((len(xt[i:i + 500]),), t, device=device)).sample
                             for i in range(0, len(xt), 500)])
            x0hat = (xt - s * eps) / a
            mse_model = F.mse_loss(x0hat, x0).item()
            # best affine x0 ~ c1*xt + c0 in least squares over all pixels
            X = torch.stack([xt.flatten(), torch.ones_like(xt.flatten())], 1).double()
            coef = torch.linalg.lstsq(X, x0.flatten().double()[:, None]).solution
            mse_aff = ((X @ coef).squeeze(1) - x0.flatten().double()).pow(2).mean().item()
            out[t] = (mse_model, mse_aff, mse_model / mse_aff)
    model.train()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="diffusers folder for the EMA weights")
    ap.add_argument("--state", required=True, help="resumable training state folder")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop after this wall time (then checkpoint)")
    ap.add_argument("--max-steps", type=int, default=200000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    args = ap.parse_args()

    import diffusers
    from diffusers import UNet2DModel

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    x_train = torch.from_numpy(fashion_mnist.load_split("train", args.data_dir)).to(device)
    x_test = torch.from_numpy(fashion_mnist.load_split("test", args.data_dir)[-2000:]).to(device)  # images 8000..9999
    ac = linear_alphas_cumprod(device)

    model = UNet2DModel(**MODEL_CONFIG).to(device)
    ema = UNet2DModel(**MODEL_CONFIG).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.999))
    meta = {"step": 0, "seconds": 0.0, "seed": args.seed, "batch": args.batch, "lr": args.lr,
            "diffusers": diffusers.__version__, "torch": torch.__version__, "params": nparams, "log": []}
    if os.path.exists(os.path.join(args.state, "meta.json")):
        meta = load_state(args.state, model, ema, opt, device)
        from safetensors.torch import load_file
        ema.load_state_dict(load_file(os.path.join(args.out, "diffusion_pytorch_model.safetensors"), device=str(device)))
        print(f"resumed at step {meta['step']} ({meta['seconds']:.0f} s so far)", flush=True)
    print(f"device {device}, params {nparams}, batch {args.batch}", flush=True)

    gen = torch.Generator(device=device).manual_seed(args.seed + meta["step"])
    t0 = time.time(); last_ckpt = t0; run_loss = 0.0; nlog = 0
    ema_params = list(ema.parameters()); model_params = list(model.parameters())

    def checkpoint():
        meta["seconds"] += time.time() - checkpoint.t_mark
        checkpoint.t_mark = time.time()
        ema.save_pretrained(args.out, safe_serialization=True)
        save_state(args.state, model, ema, opt, meta)
        print(f"checkpoint at step {meta['step']}", flush=True)
    checkpoint.t_mark = t0

    while meta["step"] < args.max_steps and (time.time() - t0) < args.minutes * 60:
        step = meta["step"]
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        idx = torch.randint(0, x_train.shape[0], (args.batch,), device=device, generator=gen)
        x0 = x_train[idx]
        flip = torch.rand(args.batch, 1, 1, 1, device=device, generator=gen) < 0.5
        x0 = torch.where(flip, x0.flip(3), x0)
        t = torch.randint(0, 1000, (args.batch,), device=device, generator=gen)
        noise = torch.randn(x0.shape, device=device, generator=gen)
        a = ac[t].sqrt().view(-1, 1, 1, 1); s = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
        xt = a * x0 + s * noise
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=args.bf16):
            pred = model(xt, t).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model_params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_mul_(ema_params, decay)
            torch._foreach_add_(ema_params, model_params, alpha=1 - decay)
        meta["step"] = step + 1
        run_loss += loss.item() if (step % 50 == 0) else 0.0
        nlog += 1 if (step % 50 == 0) else 0
        if (step + 1) % 1000 == 0:
            el = time.time() - t0
            line = {"step": step + 1, "loss": run_loss / max(nlog, 1), "elapsed_s": round(el, 1)}
            meta["log"].append(line)
            print(json.dumps(line), flush=True)
            run_loss = 0.0; nlog = 0
        if time.time() - last_ckpt > args.checkpoint_minutes * 60:
            checkpoint(); last_ckpt = time.time()
    checkpoint()

    # held-out denoising check (test images 8000..9999) and test/train epsilon loss
    r = affine_ratio(ema, x_test, ac, [100, 200, 300], device)
    for t, (mm, ma, ratio) in r.items():
        print(f"t={t}: model x0 MSE {mm:.5f}, best affine {ma:.5f}, ratio {ratio:.4f}", flush=True)
    meta["affine_ratio"] = {str(t): v[2] for t, v in r.items()}
    with torch.no_grad():
        g = torch.Generator(device="cpu").manual_seed(1)
        for name, xs in (("train", x_train[:2000]), ("test", x_test)):
            t = torch.randint(0, 1000, (xs.shape[0],), generator=g).to(device)
            n = torch.randn(xs.shape, generator=g).to(device)
            a = ac[t].sqrt().view(-1, 1, 1, 1); s = (1 - ac[t]).sqrt().view(-1, 1, 1, 1)
            ema.eval()
            l = F.mse_loss(ema(a * xs + s * n, t).sample, n).item()
            meta[f"{name}_eps_loss"] = l
            print(f"{name} epsilon MSE (EMA, 2000 images, uniform t): {l:.5f}", flush=True)
    save_state(args.state, model, ema, opt, meta)


if __name__ == "__main__":
    main()
