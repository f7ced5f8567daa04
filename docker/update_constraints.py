"""Regenerate docker/constraints.txt: the versions pip resolves for eval-firewall[model,remote]
(the runtime dependencies, s3fs for s3:// train files and index locations, plus the `torch`
extra the image's builder stage exports the model with).

    python docker/update_constraints.py      # with the pip of an environment where tests pass

The resolution is pip's own (``pip install --dry-run --report``), so the pins are consistent
with every bound the packages declare (e.g. model2vec[distill]'s on transformers).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def resolve() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--quiet", "--report", str(report), "torch==2.13.0", f"{ROOT}[model,remote]"],
                       check=True)
        installed = json.loads(report.read_text())["install"]
    pins = {}
    for item in installed:
        name = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower()
        pins[name] = item["metadata"]["version"].split("+")[0]   # 2.13.0+cpu: the index decides
    pins.pop("eval-firewall", None)
    return pins


if __name__ == "__main__":
    pins = resolve()
    out = Path(__file__).with_name("constraints.txt")
    header = ("# Versions the image installs: pip's resolution of eval-firewall[model,remote] (the runtime\n"
              "# dependencies, s3fs for s3:// train files and index locations, and the `torch` extra of the\n"
              "# builder stage).\n"
              "# Regenerate: python docker/update_constraints.py\n")
    out.write_text(header + "".join(f"{k}=={v}\n" for k, v in sorted(pins.items())))
    print(f"{len(pins)} pins written to {out}")
