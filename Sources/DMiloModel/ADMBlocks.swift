// guided-diffusion AttentionBlock on our AttentionBlock (the math is the same; only the tensor layout differs):
//   h = GroupNorm32(x) viewed [B, C, L];  qkv = Conv1d(C, 3C, 1)(h);  a = QKVAttention(Legacy)(qkv)
//   out = x + Conv1d(C, C, 1)(a)   (proj_out; no rescale)
// A 1×1 Conv1d is a Linear on tokens: its weight [out, in, 1] has the Linear [out, in] layout in memory.
// The two attention orders differ only in which rows of the fused qkv projection feed which head
// (softmax(q·kᵀ/√d)·v per head, d = C/heads, in both):
//   legacy (QKVAttentionLegacy, `qkv.reshape(B·heads, 3d, L).split(d)`):  head h's q, k, v = rows h·3d + [0, d), [d, 2d), [2d, 3d)
//   new    (QKVAttention, `qkv.chunk(3)` then heads):                      head h's q, k, v = rows h·d, C + h·d, 2C + h·d  (+ [0, d))
// After loading, a legacy qkv weight and bias are permuted once into the new order, so that q, k and v are three
// contiguous row blocks [C, C] that `LinearLayer(slice:)` reads and every head sits in columns h·d ..< (h+1)·d,
// which is the layout our attention kernel takes.

import DMiloKernels

/// The fused qkv projection of one ADM attention block and how its rows are ordered.
struct ADMQKV {
    let weight: Parameter, bias: Parameter
    let channels, heads: Int
    let legacyOrder: Bool

    /// Row r of the new ("q | k | v", heads inside each) order comes from this row of the legacy order.
    static func legacyRow(forNewRow r: Int, channels C: Int, heads: Int) -> Int {
        let d = C / heads
        let part = r / C, h = (r % C) / d, i = r % d  // part 0/1/2 = q/k/v
        return h * 3 * d + part * d + i
    }

    /// Permutes a legacy-ordered weight [3C, C(, 1)] and bias [3C] in place into the new order (no-op otherwise).
    /// Parameters of rank < 4 are always resident float32 (see `WeightResidency`), so the data can be rewritten.
    func canonicalise() {
        guard legacyOrder else { return }
        precondition(weight.isResident && bias.isResident, "qkv weights must be resident")
        let C = channels, rows = 3 * C
        let w = [Float](UnsafeBufferPointer(start: weight.data, count: rows * C))
        let b = [Float](UnsafeBufferPointer(start: bias.data, count: rows))
        for r in 0..<rows {
            let src = Self.legacyRow(forNewRow: r, channels: C, heads: heads)
            for j in 0..<C { weight.data[r * C + j] = w[src * C + j] }
            bias.data[r] = b[src]
        }
    }
}

/// Builds guided-diffusion's AttentionBlock at `prefix` (e.g. "input_blocks.4.1") as an `AttentionBlock`.
func admAttention(
    _ store: ParameterStore, _ prefix: String, channels C: Int, heads: Int, legacyOrder: Bool
)
    -> (AttentionBlock, ADMQKV)
{
    let w = store.declare(prefix + ".qkv.weight", [3 * C, C, 1])
    let b = store.declare(prefix + ".qkv.bias", [3 * C])
    let po = store.declare(prefix + ".proj_out.weight", [C, C, 1])
    let pb = store.declare(prefix + ".proj_out.bias", [C])
    let norm = GroupNormLayer(store, prefix + ".norm", channels: C, groups: ADMConfig.groups, eps: ADMConfig.eps)
    let block = AttentionBlock(
        norm: norm,
        toQ: LinearLayer(slice: w, bias: b, inF: C, outF: C, rowOffset: 0),
        toK: LinearLayer(slice: w, bias: b, inF: C, outF: C, rowOffset: C),
        toV: LinearLayer(slice: w, bias: b, inF: C, outF: C, rowOffset: 2 * C),
        toOut: LinearLayer(slice: po, bias: pb, inF: C, outF: C, rowOffset: 0),
        channels: C, heads: heads, rescale: 1)
    return (block, ADMQKV(weight: w, bias: b, channels: C, heads: heads, legacyOrder: legacyOrder))
}
