#!/usr/bin/env bash
# Build the action's image on a machine without Docker Hub, like this project's CI machine:
#
#   docker/build-here.sh TAG
#
# - starts dockerd when no daemon answers (Debian's docker.io package);
# - makes the base image when it is missing: Debian bookworm by mmdebstrap (minbase plus
#   python3, python3-venv, ca-certificates and git; no manual pages, translations or docs),
#   imported as $EVAL_FIREWALL_BASE (default eval-firewall-base:bookworm);
# - gives pip inside the build what pip has here: the CA bundle and the local wheel folders
#   that `pip config list` names (global.cert, global.find-links), copied into docker/pip/ for
#   the build and removed afterwards; torch then comes from those wheels, not from
#   download.pytorch.org.
# Then prints the image's size. Needs root (dockerd, mmdebstrap).
set -euo pipefail
tag="${1:?usage: docker/build-here.sh TAG}"
root="$(cd "$(dirname "$0")/.." && pwd)"
base="${EVAL_FIREWALL_BASE:-eval-firewall-base:bookworm}"

if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null || { echo "build-here: no dockerd (apt-get install docker.io)" >&2; exit 2; }
    echo "build-here: starting dockerd (log: /var/log/eval-firewall-dockerd.log)" >&2
    nohup dockerd >/var/log/eval-firewall-dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "build-here: dockerd did not start" >&2; exit 2; }
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || { echo "build-here: no mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }
    scratch="$(mktemp -d)"
    echo "build-here: making the base image $base with mmdebstrap" >&2
    # Without manual pages, translations and documentation (copyright notices kept): 69 MB.
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates,git \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        bookworm "$scratch/base.tar"
    docker import "$scratch/base.tar" "$base" >/dev/null
    rm -rf "$scratch"
fi

# pip's settings on this machine, as `pip config list` prints them (key='value' lines).
setting() {
    python3 -m pip config list 2>/dev/null | sed -n "s/^\(global\|:env:\)\.$1='\(.*\)'$/\2/p" | head -n 1
}
pipdir="$root/docker/pip"
cleanup() { rm -rf "$pipdir/ca.crt" "$pipdir/wheels"; }
trap cleanup EXIT
cleanup
args=()
cert="$(setting cert)"
if [ -n "$cert" ] && [ -f "$cert" ]; then
    cp "$cert" "$pipdir/ca.crt"
    args+=(--build-arg PIP_CERT=/tmp/pip/ca.crt)
fi
links=""
for folder in $(setting find-links); do
    if [ -d "$folder" ]; then
        mkdir -p "$pipdir/wheels"
        cp -l "$folder"/*.whl "$pipdir/wheels/" 2>/dev/null || cp "$folder"/*.whl "$pipdir/wheels/"
        links=/tmp/pip/wheels
    fi
done
if [ -n "$links" ]; then
    # The local folder holds the CPU torch wheel: take it rather than the PyTorch index.
    args+=(--build-arg PIP_FIND_LINKS="$links" --build-arg TORCH_INDEX=)
fi

started=$SECONDS
docker build --network host --build-arg BASE_IMAGE="$base" "${args[@]}" -t "$tag" "$root"
size="$(docker image inspect --format '{{.Size}}' "$tag")"
echo "build-here: built $tag in $((SECONDS - started)) s; size $(( (size + 500000) / 1000000 )) MB ($(docker images --format '{{.Size}}' "$tag"))"
