"""``python -m eval_firewall.embeddings DIR [MODEL]``: fill DIR with a model's ONNX export and
static model, for ``EVAL_FIREWALL_MODELS`` (the Dockerfile bakes the default model this way)."""

import sys
from pathlib import Path

from . import prepare

if not 2 <= len(sys.argv) <= 3:
    sys.exit("usage: python -m eval_firewall.embeddings DIR [MODEL]")
for path in prepare(Path(sys.argv[1]), *sys.argv[2:]):
    print(path)  # noqa: T201
