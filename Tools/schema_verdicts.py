#!/usr/bin/env python3
"""Python jsonschema's verdict on every manifest of the agreement corpus, written as a committed fixture.

    .venv-tools/bin/python Tools/schema_verdicts.py   # any venv with Tools/requirements.txt (jsonschema)

reads   schemas/manifest.schema.json and Tests/DMiloJobsTests/Fixtures/manifest-corpus/*.json
writes  Tests/DMiloJobsTests/Fixtures/manifest-verdicts.json

A manifest is valid when it is strict JSON (UTF-8, no duplicate keys, no NaN/Infinity; Python's json already
refuses comments and trailing commas) and jsonschema (draft 2020-12) finds no error. The Swift test
(Tests/DMiloJobsTests/SchemaAgreementTests.swift) feeds the same files to the daemon's parser and compares, so CI
needs no Python. Where the two must differ, the case is listed in DIFFERENCES with the reason; the fixture records
the schema's hash and each file's, so a stale fixture is detected instead of silently compared.
"""
import hashlib
import json
import pathlib
import sys
from importlib.metadata import version

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "manifest.schema.json"
CORPUS = ROOT / "Tests" / "DMiloJobsTests" / "Fixtures" / "manifest-corpus"
OUT = ROOT / "Tests" / "DMiloJobsTests" / "Fixtures" / "manifest-verdicts.json"

# file -> (dmilo's verdict, why it legitimately differs from the schema's)
DIFFERENCES = {
    "good-utf8-bom.json": (True, "RFC 8259 §8.1 lets a parser ignore a leading UTF-8 byte-order mark; dmilo does, "
                                 "Python's json refuses it (so the schema never sees the document)"),
}


class StrictJSONError(ValueError):
    pass


def strict_load(data: bytes):
    """json.loads plus what RFC 8259 leaves open and dmilo refuses: duplicate keys, NaN/Infinity, non-UTF-8."""
    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise StrictJSONError(f"duplicate key {k!r}")
            out[k] = v
        return out

    def constant(name):
        raise StrictJSONError(f"{name} is not JSON")

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise StrictJSONError(f"not UTF-8: {e}") from None
    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


def main() -> int:
    schema_bytes = SCHEMA.read_bytes()
    schema = json.loads(schema_bytes)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        data = path.read_bytes()
        try:
            doc = strict_load(data)
        except (ValueError, StrictJSONError) as e:
            valid, why = False, f"not strict JSON: {e}"
        else:
            error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
            valid = error is None
            why = "" if valid else "/".join(map(str, error.absolute_path)) + ": " + error.message[:200]
        cases.append({"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "schema_valid": valid,
                      "why": why})
    names = {c["file"] for c in cases}
    unknown = set(DIFFERENCES) - names
    if unknown:
        sys.exit(f"DIFFERENCES names files not in the corpus: {sorted(unknown)}")
    differences = [{"file": f, "schema_valid": next(c["schema_valid"] for c in cases if c["file"] == f),
                    "dmilo_valid": d, "reason": r} for f, (d, r) in sorted(DIFFERENCES.items())]
    for d in differences:
        if d["schema_valid"] == d["dmilo_valid"]:
            sys.exit(f"{d['file']} is listed as a difference but the schema agrees with dmilo's verdict")
    fixture = {
        "generated_by": "Tools/schema_verdicts.py",
        "jsonschema": version("jsonschema"),
        "schema_sha256": hashlib.sha256(schema_bytes).hexdigest(),
        "cases": cases,
        "differences": differences,
    }
    OUT.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    good = sum(c["schema_valid"] for c in cases)
    print(f"{len(cases)} manifests: {good} valid, {len(cases) - good} invalid per the schema; wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
