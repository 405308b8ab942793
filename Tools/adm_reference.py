"""The ADM (guided-diffusion) UNet reference we did not write: PyPI deepinv's `DiffUNet` (deepinv/models/diffunet.py,
"taken with minor modifications from DiffPIR", itself guided-diffusion's unet.py), used by make_adm_fixtures.py and
bench_torch.py.

Two things stand between that class and our use, and both are handled here without re-typing the architecture:
  * `import deepinv` pulls in torchvision (not in our venv). diffunet.py itself imports only torch/numpy and two
    sibling files (models/utils.py, models/base.py), so we load exactly those three files as modules of a stub
    `deepinv` package (the one symbol utils.py takes from deepinv.utils.io, DownloadError, is stubbed).
  * `DiffUNet.__init__` hard-codes the FFHQ / ImageNet hyperparameters as local assignments. We take its source,
    replace each of those assignment lines by a lookup in the config (each replacement is asserted to hit exactly
    one line), and compile that as `__init__` of a subclass, so the wiring of input/middle/output blocks is
    deepinv's own code, line for line.

Config keys are guided-diffusion's `create_model` arguments (see Tools/convert_adm.py, ADM_KEYS).
"""
import importlib.util
import inspect
import os
import sys
import textwrap
import types

import torch

DEEPINV_VERSION = "0.5.0"  # pinned in Tools/requirements-adm.txt; the replacements below are checked against its source


def _load_diffunet_module():
    if "deepinv.models.diffunet" in sys.modules:
        return sys.modules["deepinv.models.diffunet"]
    spec = importlib.util.find_spec("deepinv")  # locates the package without executing its __init__
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("deepinv is not installed: .venv-tools/bin/pip install --no-deps -r Tools/requirements-adm.txt")
    root = list(spec.submodule_search_locations)[0]
    pkg = types.ModuleType("deepinv"); pkg.__path__ = [root]
    models = types.ModuleType("deepinv.models"); models.__path__ = [os.path.join(root, "models")]
    utils = types.ModuleType("deepinv.utils"); utils.__path__ = []
    io = types.ModuleType("deepinv.utils.io")

    class DownloadError(RuntimeError):
        pass

    io.DownloadError = DownloadError
    sys.modules.update({"deepinv": pkg, "deepinv.models": models, "deepinv.utils": utils, "deepinv.utils.io": io})
    for name in ("utils", "base", "diffunet"):
        full = "deepinv.models." + name
        s = importlib.util.spec_from_file_location(full, os.path.join(root, "models", name + ".py"))
        m = importlib.util.module_from_spec(s)
        sys.modules[full] = m
        s.loader.exec_module(m)
    return sys.modules["deepinv.models.diffunet"]


# DiffUNet.__init__ line (stripped) -> replacement reading the config dict `_adm`.
_REPLACEMENTS = {
    'model_channels = 128': 'model_channels = _adm["num_channels"]',
    'num_res_blocks = 1': 'num_res_blocks = _adm["num_res_blocks"]',
    'attention_resolutions = "16"': 'attention_resolutions = ",".join(str(r) for r in _adm["attention_resolutions"])',
    'dropout = 0.1': 'dropout = 0.0',
    'num_heads = 4': 'num_heads = _adm["num_heads"]',
    'num_head_channels = 64': 'num_head_channels = _adm["num_head_channels"]',
    'num_heads_upsample = -1': 'num_heads_upsample = _adm["num_heads_upsample"]',
    'use_scale_shift_norm = True': 'use_scale_shift_norm = _adm["use_scale_shift_norm"]',
    'resblock_updown = True': 'resblock_updown = _adm["resblock_updown"]',
    'use_new_attention_order = False': 'use_new_attention_order = _adm["use_new_attention_order"]',
    'out_channels = 6 if out_channels == 3 else out_channels':
        'out_channels = in_channels * (2 if _adm["learn_sigma"] else 1)',
    'channel_mult = (1, 1, 2, 2, 4, 4)': 'channel_mult = tuple(_adm["channel_mult"])',
    'img_size = 256': 'img_size = _adm["image_size"]',
}


def diffunet_class():
    """A DiffUNet subclass whose __init__(cfg) builds deepinv's network for a guided-diffusion config dict."""
    mod = _load_diffunet_module()
    src = textwrap.dedent(inspect.getsource(mod.DiffUNet.__init__))
    lines = src.split("\n")
    for old, new in _REPLACEMENTS.items():
        hits = [i for i, l in enumerate(lines) if l.strip() == old]
        if len(hits) != 1:
            raise SystemExit(f"deepinv DiffUNet.__init__ changed: expected one line '{old}', found {len(hits)} "
                             f"(this tool is checked against deepinv {DEEPINV_VERSION})")
        i = hits[0]
        lines[i] = lines[i][: len(lines[i]) - len(lines[i].lstrip())] + new
    src = "\n".join(lines).replace("def __init__(\n    self,", "def __init__(\n    self,\n    _adm,", 1)
    # compiled outside the class body: zero-argument super() has no __class__ cell, so name the class
    src = src.replace("super().__init__()", "super(DiffUNet, self).__init__()", 1)
    if "_adm,\n" not in src or "super(DiffUNet, self)" not in src:
        raise SystemExit("deepinv DiffUNet.__init__ signature changed")
    ns = dict(vars(mod))
    exec(compile(src, mod.__file__, "exec"), ns)

    class ConfiguredDiffUNet(mod.DiffUNet):
        pass

    ConfiguredDiffUNet.__init__ = ns["__init__"]
    return ConfiguredDiffUNet


def build(cfg: dict) -> torch.nn.Module:
    """deepinv's DiffUNet for guided-diffusion config `cfg`, random PyTorch-default weights, eval mode."""
    if cfg.get("class_cond"):
        raise SystemExit("class-conditional ADM models are not supported")
    cls = diffunet_class()
    large = False  # the else-branch holds the replaced defaults
    m = cls(cfg, in_channels=cfg["in_channels"], out_channels=cfg["in_channels"], large_model=large, pretrained=None)
    return m.eval()


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every weight re-drawn from `seed`: PyTorch default init for each conv / linear, including the ones
    guided-diffusion zero-initialises (out.2, ResBlock out_layers.3, attention proj_out), so no block is the
    identity; GroupNorm scales 1 + 0.2·N(0, 1), biases 0.1·N(0, 1)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
                m.reset_parameters()  # undoes zero_module()
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.ndim == 1 and name.endswith("weight"):  # GroupNorm scales
                p.copy_(1 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.1 * noise)


def to_float64(model: torch.nn.Module) -> torch.nn.Module:
    """Run deepinv's DiffUNet in float64 for an exact reference. Three dtype pins in its code are lifted, none of
    which changes the math: `forward_diffusion` casts the input to `self.dtype` (float32), GroupNorm32 computes in
    float32 (its purpose: fp16 models normalise in at least fp32), and `timestep_embedding` returns float32 (kept:
    the embedding is computed in float32 exactly as deepinv does, then widened, as our engine computes it in float32)."""
    mod = _load_diffunet_module()
    model = model.double()
    model.dtype = torch.float64
    mod.GroupNorm32.forward = torch.nn.GroupNorm.forward
    if not getattr(mod.timestep_embedding, "_widened", False):
        orig = mod.timestep_embedding

        def widened(t, dim, max_period=10000):
            return orig(t, dim, max_period).double()

        widened._widened = True
        mod.timestep_embedding = widened
    return model


def eps_forward(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The raw network output (B, out_channels, H, W) at integer timesteps t (guided-diffusion's model(x, t))."""
    return model.forward_diffusion(x, t)
