#!/usr/bin/env python3
"""A small GGUF file written by PyPI gguf's GGUFWriter (the reference implementation), plus the values it holds,
so the Swift reader is tested against bytes we did not write.

  python3 Tools/make_gguf_fixture.py --out Tests/DMiloFormatsTests/Fixtures
"""
import argparse
import json
import os

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import dequantize, quantize


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    path = os.path.join(args.out, "reference.gguf")
    w = GGUFWriter(path, arch="dmilo.test")
    w.add_uint32("test.u32", 123456)
    w.add_int32("test.i32", -42)
    w.add_float32("test.f32", 0.625)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo gguf")
    w.add_array("test.ints", [1, 2, 3])
    w.add_array("test.strings", ["a", "bc"])
    w.add_uint64("test.u64", 2 ** 40)
    w.add_float64("test.f64", -1.5)
    w.add_quantization_version(2)
    expected = {}
    a = rng.standard_normal((4, 64)).astype(np.float32)           # Q8_0: rows of 64 = 2 blocks
    qa = quantize(a, GGMLQuantizationType.Q8_0)
    w.add_tensor("weight.q8", qa, raw_dtype=GGMLQuantizationType.Q8_0)
    expected["weight.q8"] = {"shape": list(a.shape), "type": "Q8_0",
                             "values": dequantize(qa, GGMLQuantizationType.Q8_0).reshape(-1).astype(float).tolist()}
    b = rng.standard_normal((3, 5)).astype(np.float16)
    w.add_tensor("weight.f16", b)
    expected["weight.f16"] = {"shape": [3, 5], "type": "F16", "values": b.astype(float).reshape(-1).tolist()}
    c = rng.standard_normal((2, 3, 7)).astype(np.float32)
    w.add_tensor("weight.f32", c)
    expected["weight.f32"] = {"shape": [2, 3, 7], "type": "F32", "values": c.astype(float).reshape(-1).tolist()}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # Our own quantiser must produce the same Q8_0 bytes as gguf's for the same input.
    expected["q8_input"] = a.reshape(-1).astype(float).tolist()
    expected["q8_bytes_hex"] = bytes(qa.tobytes()).hex()
    with open(os.path.join(args.out, "reference-gguf.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main()
