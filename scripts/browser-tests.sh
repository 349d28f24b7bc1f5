#!/usr/bin/env bash
# The crate in a browser: builds it for wasm32 and runs the browser suite (tests/browser.rs) and
# the demo page's test (web/test/page.mjs) in two engines, headless: Chromium (WebGPU on
# SwiftShader, Chrome's own shader compiler) and Firefox ESR (naga, on the machine's Vulkan
# driver). Installs what is missing: the rustup target, Debian's chromium, chromium-driver,
# firefox-esr and npm, and wasm-bindgen-cli at Cargo.lock's wasm-bindgen version (about 5
# minutes to build on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "== rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v firefox-esr >/dev/null || missing+=(firefox-esr)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qF " $version"; then
    echo "== cargo install wasm-bindgen-cli --version $version"
    cargo install wasm-bindgen-cli --version "$version"
fi

echo "== cargo build --target wasm32-unknown-unknown (the crate, default features)"
cargo build --target wasm32-unknown-unknown
echo "== cargo clippy --target wasm32-unknown-unknown (the crate with its browser suite, the demo)"
cargo clippy --target wasm32-unknown-unknown --lib --test browser -- -D warnings
cargo clippy --target wasm32-unknown-unknown -p gumbel-wgpu-web -- -D warnings

echo "== the browser suite in headless Chromium"
# wasm-bindgen-test-runner drives Chromium through chromedriver with webdriver.json's options.
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-1200}
cargo test --target wasm32-unknown-unknown --test browser

echo "== the browser suite in headless Firefox"
# No WebDriver for Firefox is packaged here: web/test/suite.mjs serves the suite with
# wasm-bindgen-test-runner and opens it in Firefox through puppeteer.
(cd web/test && { [ -d node_modules/puppeteer-core ] || npm ci --no-audit --no-fund --loglevel=error; })
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="node web/test/suite.mjs" BROWSER=firefox \
    cargo test --target wasm32-unknown-unknown --test browser

echo "== the demo page in headless Chromium and Firefox"
scripts/web.sh test
