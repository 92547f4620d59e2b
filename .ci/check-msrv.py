"""Fails when the workspace's rust-version is older than a dependency of a published crate needs.

cargo's MSRV-aware resolver keeps picking versions that fit the declared rust-version only
while the declaration is true; this keeps it true as dependencies are bumped."""
import json
import subprocess
import sys

PUBLISHED = {"guanxi", "guanxi-core", "guanxi-sql", "guanxi-sqlite", "guanxi-postgres"}


def version(v):
    return tuple(int(x) for x in v.split(".")) + (0,) * (3 - len(v.split(".")))


meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked"],
                                 check=True, capture_output=True, text=True).stdout)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
roots = [i for i, p in packages.items() if p["name"] in PUBLISHED]
declared = {packages[i]["rust_version"] for i in roots}
assert len(declared) == 1, f"published crates declare different rust-versions: {declared}"
declared = declared.pop()
seen, todo = set(), list(roots)
while todo:
    pid = todo.pop()
    if pid in seen:
        continue
    seen.add(pid)
    todo += [d["pkg"] for d in nodes[pid]["deps"] if any(k["kind"] in (None, "build") for k in d["dep_kinds"])]
newer = sorted((version(packages[i]["rust_version"]), packages[i]["name"], packages[i]["version"])
               for i in seen if packages[i].get("rust_version") and version(packages[i]["rust_version"]) > version(declared))
for v, name, ver in newer:
    print(f"{name} {ver} needs rust {'.'.join(map(str, v))}, newer than the declared {declared}")
print(f"msrv: rust-version {declared} covers {len(seen)} packages" if not newer else "msrv: FAILED")
sys.exit(1 if newer else 0)
