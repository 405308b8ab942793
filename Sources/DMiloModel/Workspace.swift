// Memory owned by a model for its passes: three arenas with different lifetimes (see Arena.swift).

/// Batch geometry (B, C, H, W) of one activation.
struct Geometry: Equatable {
    var batch, channels, height, width: Int
    var spatial: Int { height * width }
    var count: Int { batch * channels * height * width }
}

/// Activation, temporary and gradient arenas of one model.
final class Workspace {
    /// Network-level activations (block outputs, skips); in recording mode also every module's saved tensors.
    /// Lives from the start of a forward pass to the end of the matching VJP.
    let acts = Arena()
    /// Module-internal temporaries, used with mark/release inside each module.
    let temp = Arena()
    let grad = Arena()
    /// True while a forward pass records for a VJP.
    var recording = false
    /// First failure to re-read a non-resident weight during the current pass (see `Parameter.values`).
    var weightError: String?

    /// A buffer a module's backward will read: on the tape when recording, else a temporary.
    func keep(_ count: Int) -> UnsafeMutablePointer<Float> { recording ? acts.alloc(count) : temp.alloc(count) }

    var reservedBytes: Int { acts.reservedBytes + temp.reservedBytes + grad.reservedBytes }
}
