#!/usr/bin/env python3
"""Regenerate tests/golden/case1 and case2 from facts stated in modelkit-format.md (no package code).

* Layer tars: the §10.2 reference model and dataset tars (their sha256 and sizes are printed in
  the document and checked here), copied from the shared case0 vector.
* Config bytes: written by hand from §3.4 (Go struct order, "package" always, digest/diffId on
  every entry, map keys sorted, compact) and the §3.5 yaml.v3 table (yes, on, 0o17, 017, 1e3,
  1.0, 2024-01-01) plus §3.4's "hex": 0xFF -> 255 and "version: 1.0 becomes \"1.0\"".
* Manifest bytes: written by hand from §3.3 (field order, filepath annotation, created/cli-version).

    python3 tests/golden/make_cases.py /path/to/shared/conformance/kitops/case0
"""

import hashlib
import json
import os
import shutil
import sys
from datetime import UTC, datetime

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_TAR = "4111230d7e281850ae2d1989e72f9235a725337db99a49fdb0c91cd6ea8627e6"  # §10.2, 5120 bytes
DATA_TAR = "ad4e6fc877eb1944df8aaa52be2dd4cbd258870ddfc67869eef1a7058c4fe3c2"  # §10.2, 2048 bytes
EPOCH = 1782295872
CREATED = datetime.fromtimestamp(EPOCH, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
assert CREATED == "2026-06-24T10:11:12Z"  # §3.1 example value
CLI = "1.15.0"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def write_case(name, desc, covers, files, dirs, kitfile_text, config, layers):
    case = os.path.join(HERE, name)
    shutil.rmtree(case, ignore_errors=True)
    ctx = os.path.join(case, "ctx")
    os.makedirs(os.path.join(case, "expected", "layers"))
    modes = {}
    for d in dirs:
        os.makedirs(os.path.join(ctx, d), exist_ok=True)
        modes[d] = "0755"
    all_files = {"Kitfile": kitfile_text.encode(), **files}
    for rel, data in all_files.items():
        p = os.path.join(ctx, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        modes[rel] = "0644"
    exp_layers = []
    for i, (kind, tar, filepath) in enumerate(layers):
        rel = f"expected/layers/{i}-{kind}.tar"
        with open(os.path.join(case, rel), "wb") as f:
            f.write(tar)
        exp_layers.append(
            {
                "file": rel,
                "mediaType": f"application/vnd.kitops.modelkit.{kind}.v1.tar",
                "digest": "sha256:" + sha(tar),
                "size": len(tar),
                "filepath": filepath,
            }
        )
    layer_json = ",".join(
        f'{{"mediaType":"{x["mediaType"]}","digest":"{x["digest"]}","size":{x["size"]},'
        f'"annotations":{{"org.cncf.model.filepath":"{x["filepath"]}"}}}}'
        for x in exp_layers
    )
    manifest = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        '"artifactType":"application/vnd.kitops.modelkit.manifest.v1+json",'
        '"config":{"mediaType":"application/vnd.kitops.modelkit.config.v1+json",'
        f'"digest":"sha256:{sha(config)}","size":{len(config)}}},'
        f'"layers":[{layer_json}],"annotations":{{"ml.kitops.modelkit.cli-version":"{CLI}",'
        f'"org.opencontainers.image.created":"{CREATED}"}}}}'
    ).encode()
    json.loads(manifest), json.loads(config)  # well-formed
    for rel, data in (("expected/config.json", config), ("expected/manifest.json", manifest)):
        with open(os.path.join(case, rel), "wb") as f:
            f.write(data)
    meta = {
        "name": name,
        "description": desc,
        "covers": covers,
        "kitfile": "Kitfile",
        "kitfile_text": kitfile_text,
        "created": CREATED,
        "source_date_epoch": EPOCH,
        "cli_version": CLI,
        "file_modes": dict(sorted(modes.items())),
        "dirs": sorted(dirs),
        "symlinks": {},
        "file_sha256": {k: sha(v) for k, v in sorted(all_files.items())},
        "expected": {
            "manifest": "expected/manifest.json",
            "manifest_digest": "sha256:" + sha(manifest),
            "manifest_size": len(manifest),
            "config": "expected/config.json",
            "config_digest": "sha256:" + sha(config),
            "config_size": len(config),
            "layers": exp_layers,
        },
    }
    with open(os.path.join(case, "case.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main(case0: str) -> None:
    with open(os.path.join(case0, "expected", "layers", "0-model.tar"), "rb") as f:
        model_tar = f.read()
    with open(os.path.join(case0, "expected", "layers", "2-dataset.tar"), "rb") as f:
        data_tar = f.read()
    assert sha(model_tar) == MODEL_TAR and len(model_tar) == 5120
    assert sha(data_tar) == DATA_TAR and len(data_tar) == 2048

    kitfile1 = (
        "manifestVersion: 1.0.0\npackage:\n  name: case1\n  version: 1.0\nmodel:\n  path: model\n"
        "  parameters:\n    a: yes\n    b: on\n    c: 0o17\n    d: 017\n    e: 1e3\n    f: 1.0\n"
        "    g: 2024-01-01\n    h: ~\n"
        '    i: "quoted"\n    j: 0xFF\ndatasets:\n  - name: d\n    path: data.csv\n'
    )
    config1 = (
        '{"manifestVersion":"1.0.0","package":{"name":"case1","version":"1.0"},"model":{"path":"model",'
        '"parameters":{"a":"yes","b":"on","c":15,"d":15,"e":1000,"f":1,"g":"2024-01-01T00:00:00Z",'
        f'"h":null,"i":"quoted","j":255}},"digest":"sha256:{MODEL_TAR}","diffId":"sha256:{MODEL_TAR}"}},'
        f'"datasets":[{{"name":"d","path":"data.csv","digest":"sha256:{DATA_TAR}",'
        f'"diffId":"sha256:{DATA_TAR}"}}]}}'
    ).encode()
    write_case(
        "case1",
        "The §10.2 model and dataset layers under a Kitfile of yaml.v3 edge scalars (§3.5 table).",
        [
            "yaml.v3 scalars: yes on 0o17 017 1e3 1.0 dates ~ quoted 0xFF",
            "version: 1.0 keeps its text",
            "'*.log' is root-anchored",
            "model → datasets order",
            "Go JSON: sorted map keys, null",
        ],
        {
            ".kitignore": b"*.log\n",
            "model/weights.bin": b"abc",
            "model/debug.log": b"x",
            "model/sub/cfg.json": b"{}",
            "data.csv": b"a,b\n1,2\n",
        },
        ["model", "model/sub"],
        kitfile1,
        config1,
        [("model", model_tar, "model"), ("dataset", data_tar, "data.csv")],
    )

    kitfile2 = "manifestVersion: 1.0.0\npackage:\n  name: empty\n  description: <b>&\n"
    config2 = b'{"manifestVersion":"1.0.0","package":{"name":"empty","description":"\\u003cb\\u003e\\u0026"}}'
    write_case(
        "case2",
        'A Kitfile without layers: "layers":[] and an HTML-escaped description.',
        ['"layers":[]', "HTML escaping in the config", "files in the context but in no layer"],
        {"model/w.bin": b"w", "notes.txt": b"n"},
        ["model"],
        kitfile2,
        config2,
        [],
    )


if __name__ == "__main__":
    main(sys.argv[1])
