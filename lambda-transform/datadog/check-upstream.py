#!/usr/bin/env python3
"""Checks the generated pipeline against Datadog's own definitions (not run by CI: it needs two
upstream files that this repository does not carry).

  python3 lambda-transform/datadog/check-upstream.py \\
      --openapi  <DataDog/datadog-api-client-python>/.generator/schemas/v1/openapi.yaml \\
      --provider <DataDog/terraform-provider-datadog>/datadog/resource_datadog_logs_custom_pipeline.go

1. pipeline.json is a valid request body of `POST /api/v1/logs/config/pipelines` under the
   OpenAPI schema (openapi-schema-validator, write mode: no read-only fields), and a broken
   copy of it is not (so a pass means something).
2. Every block and attribute of pipeline.tf is one the provider's schema declares at that
   place, and every attribute the provider requires there is present.

Needs PyYAML and openapi-schema-validator (pip install openapi-schema-validator pyyaml).
Exit status 1 on any finding.
"""
import argparse
import copy
import json
import re
import sys
from pathlib import Path

import yaml
from openapi_schema_validator import OAS30WriteValidator

HERE = Path(__file__).resolve().parent
problems = []


def check_openapi(spec_path):
    spec = yaml.safe_load(Path(spec_path).read_text())
    body = spec["paths"]["/api/v1/logs/config/pipelines"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schema = {"$ref": ref, "components": spec["components"]}
    validator = OAS30WriteValidator(schema)
    pipeline = json.loads((HERE / "pipeline.json").read_text())
    errors = sorted(validator.iter_errors(pipeline), key=lambda e: list(e.absolute_path))
    for e in errors:
        problems.append(f"pipeline.json {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
    broken = copy.deepcopy(pipeline)
    broken["processors"][0]["type"] = "service-remaper"
    if not list(validator.iter_errors(broken)):
        problems.append("the validator accepts an unknown processor type; its passes prove nothing")
    print(f"openapi: pipeline.json against {ref}: {len(errors)} errors")


def parse_tf(text):
    """The generated file's subset of HCL: `name = value` lines and `header {` blocks."""
    root = {"attrs": {}, "blocks": []}
    stack = [root]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line == "}":
            stack.pop()
        elif line.endswith("{"):
            block = {"name": line[:-1].split()[0], "attrs": {}, "blocks": []}
            stack[-1]["blocks"].append(block)
            stack.append(block)
        else:
            name, _, value = line.partition("=")
            stack[-1]["attrs"][name.strip()] = value.strip()
    return root


def provider_schema(go):
    """{var or function name: {key: required}} for the pieces of the pipeline schema used here."""
    def keys(body):
        """The `"key": {...}` entries of a schema map body, and whether each is Required."""
        found = {}
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r'\s*"(\w+)":\s*\{', lines[i])
            if not m:
                i += 1
                continue
            # The entry's lines, up to the one closing its brace.
            entry, open_ = [], 0
            while i < len(lines):
                entry.append(lines[i])
                open_ += lines[i].count("{") - lines[i].count("}")
                i += 1
                if open_ <= 0:
                    break
            found[m.group(1)] = re.search(r"\bRequired:\s*true", "\n".join(entry)) is not None
        return found

    def var_body(name):
        m = re.search(rf"^var {name} = (?:&schema\.Schema|map\[string\]\*schema\.Schema)\{{(.*?)^\}}", go, re.M | re.S)
        return m.group(1) if m else ""

    consts = dict(re.findall(r'^\s*(tf\w+)\s*=\s*"(\w+)"', go, re.M))
    kinds = {}
    table = re.search(r"var tfProcessors = map\[string\]\*schema\.Schema\{(.*?)^\}", go, re.M | re.S)
    for const, var in re.findall(r"^\s*(tf\w+):\s*(\w+),", table.group(1) if table else "", re.M):
        body = var_body(var)
        shared = re.search(r"Schema:\s*(\w+),", body)
        kinds[consts.get(const, const)] = keys(var_body(shared.group(1))) if shared else keys(body)
    pipeline = re.search(r"func getPipelineSchema\(isNested bool\).*?\{(.*?)^\}", go, re.M | re.S)
    filt = re.search(r"func getFilterSchema\(\).*?\{(.*?)^\}", go, re.M | re.S)
    return kinds, keys(pipeline.group(1) if pipeline else ""), keys(filt.group(1) if filt else "")


def check_terraform(go_path):
    go = Path(go_path).read_text()
    kinds, pipeline_keys, filter_keys = provider_schema(go)
    if not kinds or not pipeline_keys or not filter_keys:
        problems.append(f"could not read the provider schema from {go_path}")
        return
    tf = parse_tf((HERE / "pipeline.tf").read_text())
    (resource,) = tf["blocks"]
    checked = 0

    def against(block, allowed, where):
        nonlocal checked
        present = set(block["attrs"]) | {b["name"] for b in block["blocks"]}
        for name in sorted(present - set(allowed)):
            problems.append(f"pipeline.tf {where}: {name!r} is not in the provider's schema")
        for name, required in allowed.items():
            if required and name not in present:
                problems.append(f"pipeline.tf {where}: required {name!r} missing")
        checked += len(present)

    def pipeline(block, where):
        against(block, pipeline_keys, where)
        for b in block["blocks"]:
            if b["name"] == "filter":
                against(b, filter_keys, f"{where}.filter")
            elif b["name"] == "processor":
                (inner,) = b["blocks"]
                if inner["name"] == "pipeline":
                    pipeline(inner, f"{where}.processor.pipeline")
                elif inner["name"] in kinds:
                    against(inner, kinds[inner["name"]], f"{where}.processor.{inner['name']}")
                else:
                    problems.append(f"pipeline.tf {where}: processor kind {inner['name']!r} unknown to the provider")

    pipeline(resource, "datadog_logs_custom_pipeline.firetail")
    print(f"terraform: {checked} names of pipeline.tf checked against {len(kinds)} processor kinds")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--openapi", required=True)
    ap.add_argument("--provider", required=True)
    a = ap.parse_args()
    check_openapi(a.openapi)
    check_terraform(a.provider)
    for p in problems:
        print("problem:", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
