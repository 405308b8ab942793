#!/usr/bin/env python3
"""Independent PyTorch reference of DMILO and DMILO-PGD (and DMPlug, for the memory table).

Written from the project's algorithm notes (docs/algorithms.md: §1 DDIM steps and grids, §2 DMPlug, §3 DMILO, §4
DMILO-PGD), not from the Swift sources, so `Tools/compare_reference.py` can tell which side departs from the spec.
Gradients come from autograd; the prior is the diffusers `UNet2DModel` folder loaded with `from_pretrained`.

It runs one job manifest (docs/INTERFACE.md v1) the way `dmilo reconstruct` does:

    reference_dmilo.py JOB.json --model Models/fashion-mnist-32 --initial-noise NOISE.npy --out X.npy

- measurement: the manifest's `.npy` (written by `dmilo simulate`), used as is;
- operator: rebuilt here in torch from the manifest's `operator` object. Seeded random operators (`missing_fraction`,
  `ratio` + `matrix_seed`, motion kernels) use the Swift RNG and cannot be rebuilt; give them as files instead
  (`mask`, `matrix`, `kernel`), which both sides then read;
- solver: `method`, `steps`, `outer`, `inner`, `lr_z` (or `lr`), `lr_nu`, `lr_x`, `lambda` from the manifest; the PGD
  form, its step count and the z-prior weight are flags (the manifest has no keys for them);
- initial noise: L[0] (DMILO) or Z (DMPlug) from `--initial-noise`, the same file given to
  `dmilo reconstruct --initial-noise`.

Output: the last iterate, clamped, as float32 (C, H, W) in model units (what dmilod returns), and one JSON line on
stdout. `--memory-probe` prints the process's peak RSS (ru_maxrss) too; `dmilo bench memory --torch` uses it.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import safetensors.torch  # noqa: F401  (before diffusers: with Debian's torch 1.13 a later import fails to load weights)
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------------------------
# Operators A: x is (1, C, H, W) in model units; y has the geometry docs/INTERFACE.md documents (flattened for CS).


def cubic(t):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB imresize "cubic")."""
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t < 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def bicubic_matrix(n, f):
    """(n/f, n) matrix of MATLAB's antialiased cubic downscaling by f along one axis (docs/algorithms.md §6.1).

    Output o is centred at input coordinate (o + 0.5)·f - 0.5; taps get weight cubic((k - c)/f) (the kernel stretched
    by f: the antialiasing), normalised to sum 1; indices outside 0…n-1 reflect half-sample-symmetrically.
    """
    m = np.zeros((n // f, n), dtype=np.float64)
    for o in range(n // f):
        c = (o + 0.5) * f - 0.5
        taps = range(math.floor(c - 2 * f), math.ceil(c + 2 * f) + 1)
        w = np.array([cubic((k - c) / f) for k in taps])
        w /= w.sum()
        for k, wk in zip(taps, w):
            j = k
            while j < 0 or j >= n:          # half-sample symmetric: -1 -> 0, n -> n-1
                j = -j - 1 if j < 0 else 2 * n - 1 - j
            m[o, j] += wk
    return torch.tensor(m, dtype=torch.float32)


def load_array(job_dir, name):
    """An operator file named in the manifest (beside it, or calibration/FILE)."""
    if os.path.isabs(name) or ".." in name.split("/"):
        raise SystemExit(f"{name}: operator files must be plain names beside the manifest")
    path = os.path.join(job_dir, name)
    if not name.endswith(".npy"):
        raise SystemExit(f"{name}: the reference reads operator files as .npy only")
    return np.load(path).astype(np.float32)


def make_operator(spec, shape, job_dir):
    """A(x) as a differentiable torch function for the manifest's operator object."""
    c, h, w = shape
    kind = spec["type"]
    if kind == "denoise":
        return lambda x: x
    if kind == "super_resolution":
        f = int(spec["factor"])
        if spec.get("kernel", "bicubic") == "box":
            return lambda x: F.avg_pool2d(x, f)                 # mean of each f×f block
        rows, cols = bicubic_matrix(h, f), bicubic_matrix(w, f)
        return lambda x: rows @ x @ cols.T                      # separable: H then W
    if kind == "inpainting":
        if "mask" in spec:
            mask = torch.tensor(load_array(job_dir, spec["mask"]) != 0, dtype=torch.float32)
        elif "box" in spec:
            bx, by, bw, bh = spec["box"]
            mask = torch.ones(h, w)
            mask[by:by + bh, bx:bx + bw] = 0
        else:
            raise SystemExit("inpainting: the reference needs `mask` (a file) or `box`; seeded masks are Swift-only")
        return lambda x: x * mask
    if kind in ("gaussian_blur", "blur"):
        if kind == "gaussian_blur":
            size, sigma = int(spec["size"]), float(spec["sigma"])
            g = np.exp(-((np.arange(size) - size // 2) / sigma) ** 2 / 2)
            k = np.outer(g, g)
        else:
            k = load_array(job_dir, spec["kernel"]).astype(np.float64)
        k = torch.tensor(k / k.sum(), dtype=torch.float32)
        kh, kw = k.shape
        weight = k.expand(c, 1, kh, kw).contiguous()
        pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)   # centre at index k/2
        # Per-channel correlation (conv2d does not flip) with numpy-"reflect" padding (edge not repeated).
        return lambda x: F.conv2d(F.pad(x, pad, mode="reflect"), weight, groups=c)
    if kind == "compressed_sensing":
        if "matrix" not in spec:
            raise SystemExit("compressed_sensing: the reference needs `matrix` (a file); seeded matrices are Swift-only")
        m = torch.tensor(load_array(job_dir, spec["matrix"]))
        return lambda x: m @ x.reshape(-1)                      # image flattened in C order
    if kind == "hdr":
        gain = float(spec["gain"])
        return lambda x: (gain * x).clamp(-1, 1)
    raise SystemExit(f"operator {kind}: not in the reference")


def operator_norm(op, shape, iterations=100):
    """‖A‖ of a linear operator by power iteration on AᵀA (autograd gives Aᵀ)."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn((1,) + tuple(shape), generator=g)
    for _ in range(iterations):
        v = v / v.norm()
        x = v.clone().requires_grad_(True)
        (u,) = torch.autograd.grad(op(x), x, grad_outputs=op(v).detach())
        v = u.detach()
    return math.sqrt(v.norm().item())


# ---------------------------------------------------------------------------------------------------------------------
# The DDIM sampler as a composition of steps (docs/algorithms.md §1).


class DDIM:
    def __init__(self, unet, steps, grid):
        self.unet = unet
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)      # §1.1
        self.abar = torch.cumprod(1 - betas, 0)
        self.delta = 1000 // steps
        ts = [(steps - 1 - i) * self.delta for i in range(steps)]       # set_timesteps: descending, ends at 0
        if grid == "dmilo":                                             # §1.2: shifted by Δ, 1000 -> 999
            ts = [t + self.delta for t in ts]
            if ts[0] == 1000:
                ts[0] = 999
        self.timesteps = ts

    def step(self, i, x):
        """S_i: one deterministic (η = 0) DDIM step from timestep t_i to t_i - Δ (§1.3)."""
        t = self.timesteps[i]
        a_t, s_t = self.abar[t].sqrt(), (1 - self.abar[t]).sqrt()
        e = self.unet(x, torch.tensor([float(t)])).sample               # raw integer timestep, ε-prediction
        x0 = ((x - s_t * e) / a_t).clamp(-1, 1)                         # clip_sample
        e = (x - a_t * x0) / s_t                                        # noise re-derived from the clipped x0
        p = t - self.delta
        abar_p = self.abar[p] if p >= 0 else torch.tensor(1.0)          # set_alpha_to_one
        return abar_p.sqrt() * x0 + (1 - abar_p).sqrt() * e

    def sample(self, x):
        for i in range(len(self.timesteps)):
            x = self.step(i, x)
        return x


# ---------------------------------------------------------------------------------------------------------------------
# DMILO (§3), DMILO-PGD (§4), DMPlug (§2).


class ILO:
    """Latents L[0..N] and deviations ν[0..N-1] of the intermediate-layer optimisation (§3)."""

    def __init__(self, ddim, noise, cfg):
        self.ddim, self.cfg = ddim, cfg
        n = len(ddim.timesteps)
        self.latents = [noise.clone()]
        with torch.no_grad():
            for i in range(n):
                self.latents.append(ddim.step(i, self.latents[-1]))
        self.nu = [torch.zeros_like(noise) for _ in range(n)]

    def sweep(self, target, op):
        """Backward sweep (§3 step 2): image-side layer (with A, target y or A(X)) first, then towards the noise."""
        cfg, n = self.cfg, len(self.nu)
        for idx in reversed(range(n)):
            apply = op if idx == n - 1 else (lambda u: u)
            z = self.latents[idx].clone().requires_grad_(True)
            v = self.nu[idx].clone().requires_grad_(True)
            adam = torch.optim.Adam([{"params": [v], "lr": cfg["lr_nu"]}, {"params": [z], "lr": cfg["lr_z"]}])
            for _ in range(cfg["inner"]):
                adam.zero_grad()
                u = self.ddim.step(idx, z) + v
                loss = ((apply(u) - target) ** 2).mean() + cfg["lambda"] * v.abs().mean() + cfg["z_prior"] * (z**2).mean()
                loss.backward()
                adam.step()
            self.latents[idx], self.nu[idx] = z.detach(), v.detach()
            target = self.latents[idx]

    @torch.no_grad()
    def resimulate(self):
        """Forward re-simulation (§3 steps 3–4): L[i+1] = S_i(L[i]) + ν[i]; the image is clamp(L[N])."""
        for i in range(len(self.nu)):
            self.latents[i + 1] = self.ddim.step(i, self.latents[i]) + self.nu[i]
        self.latents[-1] = self.latents[-1].clamp(-1, 1)
        return self.latents[-1]


def dmilo(ddim, op, y, noise, cfg):
    state = ILO(ddim, noise, cfg)
    x = state.latents[-1].clamp(-1, 1)
    for _ in range(cfg["outer"]):
        state.sweep(y, op)
        x = state.resimulate()
    return x


def data_step(x, op, y, cfg):
    """DMILO-PGD's gradient step(s) on the data fidelity (§4 step 1)."""
    if cfg["pgd_form"] == "squared":                    # one step on ‖A(clamp X) - y‖², clamp inside the loss
        xv = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(((op(xv.clamp(-1, 1)) - y) ** 2).sum(), xv)
        return (x - cfg["lr_x"] * g).clamp(-1, 1)
    for _ in range(cfg["pgd_steps"]):                   # fixed-length steps on ‖A(X) - y‖, clamp after each
        xv = x.clone().requires_grad_(True)
        r = (op(xv) - y).norm()
        if r.item() == 0:
            break
        (g,) = torch.autograd.grad(r, xv)
        x = (x - cfg["lr_x"] * g).clamp(-1, 1)
    return x


def dmilo_pgd(ddim, op, y, noise, cfg):
    state = ILO(ddim, noise, cfg)
    x = torch.zeros_like(noise)                         # X starts at zero (pitfall 10)
    for _ in range(cfg["outer"]):
        x = data_step(x, op, y, cfg)
        with torch.no_grad():
            target = op(x)                              # project using A: fit A(G(z)) to A(X)
        state.sweep(target, op)
        x = state.resimulate()
    return x


def dmplug(ddim, op, y, noise, cfg):
    z = noise.clone().requires_grad_(True)
    adam = torch.optim.Adam([z], lr=cfg["lr_z"])
    for _ in range(cfg["inner"]):                       # every iteration back-propagates through all N steps
        adam.zero_grad()
        loss = ((op(ddim.sample(z).clamp(-1, 1)) - y) ** 2).mean()
        loss.backward()
        adam.step()
    with torch.no_grad():
        return ddim.sample(z).clamp(-1, 1)


# ---------------------------------------------------------------------------------------------------------------------
# One job.

UNSQUARED = ("blur", "gaussian_blur", "motion_blur", "hdr")   # operators whose PGD step is the un-squared form


def settings(manifest, args, op, shape):
    s = dict(manifest.get("solver", {}))
    method = args.method or s.get("method", "dmilo-pgd")
    cfg = {
        "steps": int(args.steps or s.get("steps", 3)),
        "outer": int(args.outer or s.get("outer", 5)),
        "inner": int(args.inner or s.get("inner", 100)),
        "lr_z": float(s.get("lr_z", s.get("lr", 1e-2))),
        "lr_nu": float(s.get("lr_nu", 1e-3)),
        "lambda": float(s.get("lambda", 0.1)),
        "z_prior": args.z_prior,
        "pgd_form": args.pgd_form or ("unsquared" if manifest["operator"]["type"] in UNSQUARED else "squared"),
        "pgd_steps": args.pgd_steps,
    }
    lr_x = s.get("lr_x")
    if lr_x is None:
        if cfg["pgd_form"] != "squared":
            raise SystemExit("the un-squared PGD form needs solver.lr_x")
        lr_x = 0.5 / operator_norm(op, shape) ** 2        # the squared-form rule (README "Solvers")
    cfg["lr_x"] = float(lr_x)
    return method, cfg


def run_job(path, model_dir, noise_path, args):
    """Runs one manifest; `args` holds the overrides of `main` (method, steps, outer, inner, z_prior, pgd_form,
    pgd_steps). Returns (x as (C, H, W) numpy, method, settings, seconds)."""
    job_dir = os.path.dirname(os.path.abspath(path))
    with open(path) as fh:
        manifest = json.load(fh)
    from diffusers import UNet2DModel
    unet = UNet2DModel.from_pretrained(model_dir, low_cpu_mem_usage=False).eval().requires_grad_(False)
    shape = (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    op = make_operator(manifest["operator"], shape, job_dir)
    y = torch.tensor(np.load(os.path.join(job_dir, manifest["measurement"])).astype(np.float32))
    with torch.no_grad():
        out_shape = op(torch.zeros((1,) + shape)).shape
    y = y.reshape(out_shape)
    noise = torch.tensor(np.load(noise_path).astype(np.float32)).reshape((1,) + shape)
    method, cfg = settings(manifest, args, op, shape)
    solver = {"dmilo": dmilo, "dmilo-pgd": dmilo_pgd, "dmplug": dmplug}[method]
    ddim = DDIM(unet, cfg["steps"], "dmplug" if method == "dmplug" else "dmilo")
    t0 = time.time()
    x = solver(ddim, op, y, noise, cfg)
    return x.reshape(shape).numpy(), method, cfg, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job", help="manifest NAME.json (files resolved beside it)")
    ap.add_argument("--model", required=True, help="diffusers UNet2DModel folder")
    ap.add_argument("--initial-noise", required=True, help=".npy initial latent, the image's shape")
    ap.add_argument("--out", help="write the reconstruction here (.npy, float32 (C, H, W))")
    ap.add_argument("--method", choices=["dmilo", "dmilo-pgd", "dmplug"], help="override solver.method")
    ap.add_argument("--steps", type=int, help="override solver.steps (DDIM steps N)")
    ap.add_argument("--outer", type=int, help="override solver.outer")
    ap.add_argument("--inner", type=int, help="override solver.inner")
    ap.add_argument("--z-prior", type=float, default=1e-4, help="weight of mean(z²) in every layer loss (§3)")
    ap.add_argument("--pgd-form", choices=["squared", "unsquared"], help="default: un-squared for blurs and HDR")
    ap.add_argument("--pgd-steps", type=int, default=1, help="steps of the un-squared form per outer iteration")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory-probe", action="store_true", help="also report this process's peak RSS")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, method, cfg, seconds = run_job(args.job, args.model, args.initial_noise, args)
    if args.out:
        np.save(args.out, x.astype(np.float32))
    report = {"method": method, "seconds": round(seconds, 3), "torch": torch.__version__, **cfg}
    if args.memory_probe:
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
