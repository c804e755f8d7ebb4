#!/usr/bin/env python3
"""Generate kubeconform's JSON schemas from the Kubernetes OpenAPI v2 spec, offline.

kubeconform normally downloads one JSON schema per kind from GitHub. Here the source is the
`api/openapi-spec/swagger.json` that ships inside the k8s.io/kubernetes Go module (fetched with
`go mod download` through the Go module proxy). The output follows kubeconform's default layout:

    OUT/<version>-standalone/<kind><suffix>.json          (unknown fields allowed)
    OUT/<version>-standalone-strict/<kind><suffix>.json   (unknown fields rejected)

so `kubeconform -strict -schema-location 'OUT/{{ .NormalizedKubernetesVersion }}-standalone{{
.StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json' -kubernetes-version 1.34.4` finds them.
Each file is self-contained: the kind's schema plus every definition it reaches, referenced
locally (`#/definitions/...`), which also keeps recursive types such as JSONSchemaProps finite.

Stdlib only, so it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

SPEC_MEMBER = "api/openapi-spec/swagger.json"
REF_PREFIX = "#/definitions/"

# Types that Kubernetes (de)serializes more loosely than their OpenAPI declaration says:
# manifests may write `port: 8080` or `port: http`, `cpu: 1` or `cpu: 500m`.
LOOSE_TYPES: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}
# OpenAPI formats that JSON Schema validators do not know; they carry no constraint here.
DROPPED_FORMATS = {"int32", "int64", "double", "float", "byte", "int-or-string"}


def load_spec(zip_path: Path | None, spec_path: Path | None) -> dict[str, Any]:
    if spec_path is not None:
        return json.loads(spec_path.read_text())
    assert zip_path is not None
    with zipfile.ZipFile(zip_path) as zf:
        member = next((n for n in zf.namelist() if n.endswith("/" + SPEC_MEMBER)), None)
        if member is None:
            raise SystemExit(f"{zip_path}: no {SPEC_MEMBER} inside the module zip")
        return json.loads(zf.read(member))


def convert(node: Any, strict: bool) -> Any:
    """OpenAPI v2 schema fragment -> JSON Schema (draft 4) fragment."""
    if isinstance(node, list):
        return [convert(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "format" and value in DROPPED_FORMATS:
            continue
        if key.startswith("x-kubernetes-") or key == "description":
            continue  # annotations only; dropping them keeps the files small
        if key == "properties":
            out[key] = {name: convert(sub, strict) for name, sub in value.items()}
        else:
            out[key] = convert(value, strict)
    preserve_unknown = node.get("x-kubernetes-preserve-unknown-fields") is True
    if strict and "properties" in out and "additionalProperties" not in out and not preserve_unknown:
        out["additionalProperties"] = False
    return out


def reachable(name: str, definitions: dict[str, Any]) -> list[str]:
    """Every definition name reachable from `name` through $ref, `name` first."""
    seen: list[str] = []
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen or current not in definitions:
            continue
        seen.append(current)
        stack.extend(_refs(definitions[current]))
    return seen


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = []
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.append(ref[len(REF_PREFIX) :])
        for value in node.values():
            found.extend(_refs(value))
        return found
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def kind_filename(group: str, version: str, kind: str) -> str:
    """kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json for a group/version/kind."""
    suffix = f"-{version}" if not group else f"-{group.split('.')[0]}-{version}"
    return f"{kind.lower()}{suffix.lower()}.json"


def generate(spec: dict[str, Any], out: Path, version: str) -> int:
    definitions: dict[str, Any] = spec["definitions"]
    converted: dict[bool, dict[str, Any]] = {False: {}, True: {}}
    for strict in (False, True):
        for name, schema in definitions.items():
            converted[strict][name] = LOOSE_TYPES.get(name) or convert(schema, strict)
    written = 0
    for strict in (False, True):
        target = out / f"{version}-standalone{'-strict' if strict else ''}"
        target.mkdir(parents=True, exist_ok=True)
        defs = converted[strict]
        for name, schema in definitions.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                doc = dict(defs[name])
                doc["$schema"] = "http://json-schema.org/draft-04/schema#"
                doc["definitions"] = {dep: defs[dep] for dep in reachable(name, definitions)}
                filename = kind_filename(gvk["group"], gvk["version"], gvk["kind"])
                (target / filename).write_text(json.dumps(doc, separators=(",", ":")))
                written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--zip", type=Path, help="k8s.io/kubernetes module zip (go mod download -json)")
    source.add_argument("--spec", type=Path, help="a swagger.json file")
    parser.add_argument("--version", required=True, help="Kubernetes version, e.g. v1.34.4")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    version = args.version if args.version.startswith("v") else "v" + args.version
    count = generate(load_spec(args.zip, args.spec), args.out, version)
    if count == 0:
        print("k8s_jsonschema: the spec held no kinds", file=sys.stderr)
        return 1
    print(f"k8s_jsonschema: wrote {count} schemas under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
