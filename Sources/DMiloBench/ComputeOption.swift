// `--compute f32|bf16|int8|auto` for the commands that run a UNet (eval, bench unet, reconstruct, sample).

import ArgumentParser
import DMiloModel

extension ComputeMode: ExpressibleByArgument {}

/// Help text shared by every `--compute` option.
public let computeHelp: ArgumentHelp = """
    arithmetic of the UNet's convolutions: f32, bf16, int8, or auto (the fastest this CPU runs natively whose \
    accuracy gate passes on the model; GroupNorm, softmax, SiLU and the time embedding stay f32)
    """
