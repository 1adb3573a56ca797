#!/usr/bin/env python3
"""Fails when a locked dependency declares a rust-version newer than the workspace's own.

The workspace's `rust-version` is the MSRV users see; clippy's `incompatible_msrv` lint checks our
code against it, and this checks the dependencies (cargo only compares them with the running
compiler, not with what we declare).
"""
import json
import subprocess
import sys


def parse(version):
    return tuple(int(part) for part in version.split("."))[:3] + (0,) * (3 - len(version.split(".")))


meta = json.loads(
    subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"])
)
members = set(meta["workspace_members"])
ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members}
if len(ours) != 1 or None in ours:
    sys.exit(f"every workspace crate must inherit one rust-version, found {sorted(map(str, ours))}")
msrv = ours.pop()
newer = sorted(
    f"{p['name']} {p['version']} needs {p['rust_version']}"
    for p in meta["packages"]
    if p["id"] not in members and p.get("rust_version") and parse(p["rust_version"]) > parse(msrv)
)
if newer:
    sys.exit(f"rust-version {msrv} is older than these dependencies need:\n  " + "\n  ".join(newer))
print(f"MSRV {msrv}: no dependency needs a newer compiler")
