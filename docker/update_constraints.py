"""Regenerate docker/constraints.txt: the installed versions of everything eval-firewall[model]
needs at run time (run with the interpreter of an environment where the tests pass)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement


def closure(name: str, extras: set[str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    todo = [(name, extras)]
    while todo:
        current, wanted = todo.pop()
        try:
            dist = distribution(current)
        except PackageNotFoundError:
            continue
        key = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if key in seen and not wanted:
            continue
        seen[key] = dist.version.split("+")[0]   # 2.13.0+cpu: the index decides the build
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not any(
                    req.marker.evaluate({"extra": e}) for e in (wanted or {""})):
                continue
            todo.append((req.name, set(req.extras)))
    return seen


if __name__ == "__main__":
    pins = closure("eval-firewall", {"model"})
    pins.pop("eval-firewall", None)
    out = Path(__file__).with_name("constraints.txt")
    header = ("# Versions the image installs (the runtime dependencies of eval-firewall[model], "
              "as tested).\n# Regenerate: python docker/update_constraints.py\n")
    out.write_text(header + "".join(f"{k}=={v}\n" for k, v in sorted(pins.items())))
    print(f"{len(pins)} pins written to {out}")
