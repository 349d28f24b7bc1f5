#!/usr/bin/env bash
# The browser demo (web/): build it, serve it on 127.0.0.1, or test it in headless Chromium.
#   scripts/web.sh build          the wasm module and its JS glue into web/www/pkg/
#   scripts/web.sh serve [PORT]   build, then serve web/www/ on http://127.0.0.1:PORT (8000)
#   scripts/web.sh test           build, then load the page headless, check its draws against
#                                 the exact probabilities, save target/web-demo.png
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli at Cargo.lock's wasm-bindgen
# version (scripts/browser-tests.sh installs both); `test` also needs Debian's chromium and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

build() {
    cargo build -p gumbel-wgpu-web --target wasm32-unknown-unknown --release
    local out=${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/gumbel_wgpu_web.wasm
    wasm-bindgen --target web --no-typescript --out-dir web/www/pkg "$out"
}

case "${1:-}" in
build) build ;;
serve)
    build
    port=${2:-8000}
    echo "serving web/www on http://127.0.0.1:$port (open it in a browser with WebGPU)"
    exec python3 -m http.server "$port" --bind 127.0.0.1 --directory web/www
    ;;
test)
    build
    (cd web/test && { [ -d node_modules/puppeteer-core ] || npm ci --no-audit --no-fund --loglevel=error; })
    node web/test/page.mjs
    ;;
*)
    echo "usage: scripts/web.sh build | serve [PORT] | test" >&2
    exit 2
    ;;
esac
