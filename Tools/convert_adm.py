#!/usr/bin/env python3
"""guided-diffusion ("ADM") checkpoint -> a folder dmilo loads: model.safetensors + config.json.

  .venv-tools/bin/python Tools/convert_adm.py ffhq_10m.pt --preset ffhq_10m --out models/ffhq-adm [--dtype f16]
  .venv-tools/bin/dmilo-quantize models/ffhq-adm --type q8_0 --output ffhq-adm-q8_0.gguf   (optional)

The checkpoint is a PyTorch state dict of guided-diffusion's `UNetModel` (unet.py; also the DPS / DMPlug / DMILO
checkpoints ffhq_10m.pt, celebahq_p2.pt, lsun_bedroom.pt, 256x256_diffusion_uncond.pt). Tensor names and shapes are
kept exactly (the engine binds parameters by checkpoint name); only the dtype may change (--dtype).
config.json holds `_class_name: "ADMUNet"` (how dmilo tells it from a diffusers config), guided-diffusion's
`create_model` arguments, and the training noise schedule (linear beta 1e-4 -> 0.02 over 1000 steps, epsilon
prediction: what all four checkpoints were trained with). Presets are the model configs of docs/algorithms.md §1.4;
--set KEY=VALUE overrides any key (JSON values, e.g. --set attention_resolutions=[32,16,8]).

Checks before writing: the state dict's stem/head shapes agree with num_channels / in_channels / learn_sigma, and
there is no class embedding (class-conditional models are not supported). The engine's loader then checks every name
and shape strictly.
"""
import argparse
import json
import os

import torch
import safetensors.torch

# guided-diffusion create_model arguments dmilo implements, with guided-diffusion's defaults.
ADM_KEYS = dict(image_size=256, in_channels=3, num_channels=128, num_res_blocks=2, channel_mult=None,
                attention_resolutions=[16, 8], num_heads=4, num_head_channels=-1, num_heads_upsample=-1,
                use_scale_shift_norm=True, resblock_updown=False, learn_sigma=False, use_new_attention_order=False,
                class_cond=False, dropout=0.0, use_fp16=False, use_checkpoint=False)
SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02,
                prediction_type="epsilon")

# docs/algorithms.md §1.4 (configs/model_config_*.yaml of the DPS / DMPlug / DMILO code; guided-diffusion README flags).
_FFHQ = dict(image_size=256, num_channels=128, num_res_blocks=1, attention_resolutions=[16], num_heads=4,
             num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True, learn_sigma=True)
_BIG = dict(image_size=256, num_channels=256, num_res_blocks=2, attention_resolutions=[32, 16, 8], num_heads=4,
            num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True, learn_sigma=True)
PRESETS = {"ffhq_10m": _FFHQ, "celebahq_p2": _FFHQ, "lsun_bedroom": _BIG, "imagenet256-uncond": _BIG}


def default_channel_mult(image_size: int) -> list:
    """guided-diffusion create_model's channel_mult for channel_mult=""."""
    table = {512: [0.5, 1, 1, 2, 2, 4, 4], 256: [1, 1, 2, 2, 4, 4], 128: [1, 1, 2, 3, 4], 64: [1, 2, 3, 4]}
    if image_size not in table:
        raise SystemExit(f"no default channel_mult for image_size {image_size}: pass --set channel_mult=[...]")
    return table[image_size]


def make_config(preset: str | None, overrides: dict) -> dict:
    cfg = dict(ADM_KEYS)
    if preset:
        cfg.update(PRESETS[preset])
    for k, v in overrides.items():
        if k not in ADM_KEYS and k not in SCHEDULE:
            raise SystemExit(f"unknown config key {k!r} (known: {sorted(ADM_KEYS) + sorted(SCHEDULE)})")
        cfg[k] = v
    if cfg["channel_mult"] in (None, ""):
        cfg["channel_mult"] = default_channel_mult(cfg["image_size"])
    if isinstance(cfg["attention_resolutions"], str):  # guided-diffusion flag syntax "32,16,8"
        cfg["attention_resolutions"] = [int(r) for r in cfg["attention_resolutions"].split(",") if r]
    if any(m != int(m) for m in cfg["channel_mult"]):
        raise SystemExit("fractional channel_mult (image_size 512) is not supported")
    cfg["channel_mult"] = [int(m) for m in cfg["channel_mult"]]
    if cfg["class_cond"]:
        raise SystemExit("class-conditional ADM models are not supported")
    for k, v in SCHEDULE.items():
        cfg.setdefault(k, v)
    cfg["out_channels"] = cfg["in_channels"] * (2 if cfg["learn_sigma"] else 1)
    return {"_class_name": "ADMUNet", "_converted_by": "Tools/convert_adm.py", **cfg}


def load_state_dict(path: str) -> dict:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise SystemExit(f"{path}: not a state dict of tensors")
    return sd


def check(sd: dict, cfg: dict, path: str) -> None:
    def shape(name):
        if name not in sd:
            raise SystemExit(f"{path}: tensor {name} missing: not a guided-diffusion UNetModel state dict")
        return list(sd[name].shape)

    stem, head = shape("input_blocks.0.0.weight"), shape("out.2.weight")
    width = cfg["channel_mult"][0] * cfg["num_channels"]
    if stem[:2] != [width, cfg["in_channels"]]:
        raise SystemExit(f"{path}: input_blocks.0.0.weight is {stem}; num_channels/in_channels give [{width}, {cfg['in_channels']}, 3, 3]")
    if head[0] != cfg["out_channels"]:
        raise SystemExit(f"{path}: out.2.weight has {head[0]} output channels; learn_sigma={cfg['learn_sigma']} gives {cfg['out_channels']}")
    if any(k.startswith("label_emb.") for k in sd):
        raise SystemExit(f"{path}: has label_emb (class-conditional): not supported")


def convert(checkpoint: str, out: str, preset: str | None, overrides: dict, dtype: str) -> dict:
    sd = load_state_dict(checkpoint)
    cfg = make_config(preset, overrides)
    check(sd, cfg, checkpoint)
    tdt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    tensors = {k: v.detach().to(tdt).contiguous() for k, v in sd.items()}
    os.makedirs(out, exist_ok=True)
    safetensors.torch.save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="guided-diffusion state dict (.pt)")
    ap.add_argument("--out", required=True, help="output folder (model.safetensors + config.json)")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (JSON value)")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32", help="stored tensor type")
    a = ap.parse_args()
    overrides = {}
    for kv in a.set:
        k, _, v = kv.partition("=")
        try:
            overrides[k] = json.loads(v)
        except json.JSONDecodeError:
            overrides[k] = v
    cfg = convert(a.checkpoint, a.out, a.preset, overrides, a.dtype)
    print(f"wrote {a.out}/model.safetensors ({a.dtype}) and config.json: "
          f"{cfg['num_channels']} ch x {cfg['channel_mult']}, {cfg['image_size']}^2, learn_sigma {cfg['learn_sigma']}")


if __name__ == "__main__":
    main()
