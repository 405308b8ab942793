// The body of a UNet as a flat list of ops in execution order, shared by the diffusers `UNet2DModel` and the
// guided-diffusion `ADMUNet` (both are "push every down-path output, pop one skip before each up-path block").
//
// Each down-path op whose output the reference appends to its skip list (diffusers `down_block_res_samples`, ADM
// `hs`) pushes it on a skip stack; each up-path block is preceded by a concat that pops it. The VJP walks the same
// list backwards: a pushed output receives its skip gradient just before its producer's backward runs.
// `UNetRuntime` owns the time embedding, the input/output conventions and the tape; this type owns the per-call
// bookkeeping of the body (sized once: no per-call allocation).

import DMiloKernels

enum Op {
    case step(any Step, pushesSkip: Bool)
    case concatSkip
}

/// A flattened UNet body with its forward, input VJP, FLOP count and memory estimate.
final class OpSequence {
    let ops: [Op]
    private var inGeo: [Geometry], outGeo: [Geometry]
    private var skipOfOp: [Int], poppedSkip: [Int]
    /// Input of each op in the last forward (kept for recomputation).
    private var opInput: [UnsafePointer<Float>?]
    private var skipPtr: [UnsafeMutablePointer<Float>?], skipGeo: [Geometry], dSkip: [UnsafeMutablePointer<Float>?]
    /// Largest activation (floats) of the last forward: sizes the two gradient buffers of the VJP.
    private var maxCount = 0

    init(_ ops: [Op]) {
        self.ops = ops
        var nSkips = 0
        skipOfOp = Array(repeating: -1, count: ops.count)
        for (i, op) in ops.enumerated() { if case .step(_, true) = op { skipOfOp[i] = nSkips; nSkips += 1 } }
        let zero = Geometry(batch: 0, channels: 0, height: 0, width: 0)
        inGeo = Array(repeating: zero, count: ops.count)
        outGeo = inGeo
        poppedSkip = Array(repeating: -1, count: ops.count)
        opInput = Array(repeating: nil, count: ops.count)
        skipPtr = Array(repeating: nil, count: nSkips)
        skipGeo = Array(repeating: zero, count: nSkips)
        dSkip = skipPtr
    }

    /// Walks the op list geometrically from `start`, calling `visit(i, input, output, skip)` for every op (`skip`:
    /// the geometry a concat pops, nil for a step or an empty stack). Returns the number of skips left unpopped.
    @discardableResult
    private func walk(_ start: Geometry, _ visit: (Int, Geometry, Geometry, Geometry?) throws -> Void) rethrows -> Int {
        var g = start, stack: [Geometry] = []
        for (i, op) in ops.enumerated() {
            var out = g, skip: Geometry?
            switch op {
            case .step(let s, let push):
                out = s.outputGeometry(g)
                if push { stack.append(out) }
            case .concatSkip:
                skip = stack.popLast()
                out.channels += skip?.channels ?? 0
            }
            try visit(i, g, out, skip)
            g = out
        }
        return stack.count
    }

    /// Walks the op list geometrically once, so a mis-wired config fails at load time rather than mid-pass.
    /// `channelsIn(step)` returns the input channels a step expects (nil: any).
    func checkWiring(_ start: Geometry, channelsIn: (any Step) -> Int?) throws {
        let unused = try walk(start) { i, g, _, skip in
            switch ops[i] {
            case .step(let s, _):
                if let c = channelsIn(s), c != g.channels {
                    throw ModelError("internal wiring error at op \(i): \(type(of: s)) expects \(c) channels, gets \(g.channels)")
                }
            case .concatSkip:
                guard let s = skip else { throw ModelError("internal wiring error: skip stack empty at op \(i)") }
                guard s.height == g.height, s.width == g.width else {
                    throw ModelError("internal wiring error at op \(i): skip \(s.height)×\(s.width) vs \(g.height)×\(g.width)")
                }
            }
        }
        guard unused == 0 else { throw ModelError("internal wiring error: \(unused) skips unused") }
    }

    /// Runs the body on x (geometry g); the last op writes into `result`. Activations come from `ws.acts`.
    func forward(_ ws: Workspace, _ start: Geometry, x: UnsafePointer<Float>, result: UnsafeMutablePointer<Float>) {
        var g = start, cur = x
        var nSkips = 0
        maxCount = g.count
        for i in ops.indices {
            inGeo[i] = g
            opInput[i] = cur
            switch ops[i] {
            case .step(let s, let push):
                let og = s.outputGeometry(g)
                let out = i == ops.count - 1 ? result : ws.acts.alloc(og.count)
                s.forward(ws, g, x: cur, out: out)
                cur = UnsafePointer(out); g = og
                if push { skipPtr[nSkips] = out; skipGeo[nSkips] = og; nSkips += 1 }
            case .concatSkip:
                nSkips -= 1
                poppedSkip[i] = nSkips
                let sg = skipGeo[nSkips]
                var og = g
                og.channels += sg.channels
                let out = ws.acts.alloc(og.count)
                ChannelConcat.forward(
                    batch: g.batch, c1: g.channels, c2: sg.channels, spatial: g.spatial, a: cur,
                    b: skipPtr[nSkips]!, out: out)
                cur = UnsafePointer(out); g = og
            }
            outGeo[i] = g
            maxCount = max(maxCount, g.count)
        }
        if !ws.recording { dropSkips() }
    }

    /// Forgets the skip pointers (they point into arenas that the next pass reuses).
    func dropSkips() { for i in skipPtr.indices { skipPtr[i] = nil } }

    /// dL/d(input) for dL/d(output) = `cotangent` (count = output count), using the tape of the last recording
    /// forward (or, with `recompute`, re-recording each op just before its backward). Returns a pointer into
    /// `ws.grad`, valid until the next pass.
    func backward(_ ws: Workspace, cotangent: UnsafePointer<Float>, count: Int, recompute: Bool) -> UnsafeMutablePointer<Float> {
        ws.grad.reset()
        var g = ws.grad.alloc(maxCount), other = ws.grad.alloc(maxCount)
        g.update(from: cotangent, count: count)
        for i in dSkip.indices { dSkip[i] = nil }
        for i in ops.indices.reversed() {
            switch ops[i] {
            case .step(let s, let push):
                if push, let d = dSkip[skipOfOp[i]] { Vec.axpy(outGeo[i].count, 1, d, g) }
                if recompute && s.tapeCount(inGeo[i]) > 0 {  // convs and resamplers keep nothing: no re-run
                    // Re-record this op's tape on top of the kept outputs, use it, drop it.
                    let m = ws.acts.mark
                    ws.recording = true
                    s.forward(ws, inGeo[i], x: opInput[i]!, out: ws.acts.alloc(outGeo[i].count))
                    ws.recording = false
                    s.backward(ws, dOut: g, dx: other)
                    ws.acts.release(to: m)
                } else {
                    s.backward(ws, dOut: g, dx: other)
                }
                swap(&g, &other)
            case .concatSkip:
                let k = poppedSkip[i], sg = skipGeo[k], ig = inGeo[i]
                let d = ws.grad.alloc(sg.count)
                dSkip[k] = d
                ChannelConcat.backwardInput(
                    batch: ig.batch, c1: ig.channels, c2: sg.channels, spatial: ig.spatial,
                    dOut: g, da: other, db: d)
                swap(&g, &other)
            }
        }
        dropSkips()
        return g
    }

    /// Bytes one forward+VJP of the body needs at input geometry g (activations kept + scratch), for memory
    /// planning; `extraActs` floats of model-level activations (time embedding, centred input) are added.
    func vjpMemoryBytes(_ start: Geometry, recompute: Bool, extraActs: Int) -> Int {
        var acts = 2 * start.count + extraActs, maxC = start.count, skips = 0, maxTape = 0
        walk(start) { i, g, out, _ in
            if case .step(let st, let push) = ops[i] {
                let tape = st.tapeCount(g)
                maxTape = max(maxTape, tape + out.count)
                if !recompute { acts += tape }
                if push { skips += out.count }
            }
            acts += out.count
            maxC = max(maxC, out.count)
        }
        // temporaries: ~6 activation-sized buffers plus conv column scratch (8 MiB cap); gradients: 2 + skips
        let temp = 6 * maxC + Conv2DShape.tileBudget
        if recompute { acts += maxTape }  // one op re-recorded at a time
        return 4 * (acts + temp + 2 * maxC + skips)
    }

    /// Forward FLOPs of the body (conv, linear and attention matmuls; ×2 multiply-adds) at input geometry g.
    func flops(_ start: Geometry) -> Int {
        var total = 0
        walk(start) { i, g, _, _ in if case .step(let s, _) = ops[i] { total += s.flops(g) } }
        return total
    }
}
