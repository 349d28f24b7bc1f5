// The browsers the tests drive, headless, with WebGPU on: Debian's Chromium (Chrome's shader
// compiler, SwiftShader here) and, where it is installed, Firefox ESR (naga, on the machine's
// Vulkan driver). Their own downloads fail on these machines, so the system ones are used.
import fs from 'node:fs';
import puppeteer from 'puppeteer-core';

export const BROWSERS = {
  chromium: {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    browser: 'chrome',
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-dev-shm-usage'],
  },
  firefox: {
    executablePath: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    browser: 'firefox',
    extraPrefsFirefox: { 'dom.webgpu.enabled': true, 'gfx.webgpu.ignore-blocklist': true },
  },
};

// The browsers named in BROWSERS= (comma-separated), or every one installed.
export function installed() {
  const wanted = process.env.BROWSERS?.split(',') ?? Object.keys(BROWSERS);
  return wanted.filter((name) => fs.existsSync(BROWSERS[name].executablePath));
}

// How long a browser suite may run, in ms (wasm-bindgen-test's variable).
export const SUITE_TIMEOUT = Number(process.env.WASM_BINDGEN_TEST_TIMEOUT ?? 1200) * 1000;

// While the suite's test that builds every pipeline runs, Firefox on lavapipe leaves a call
// into the page unanswered for longer than puppeteer's default limit of 180 s, so a call may
// take as long as a suite. BROWSER_LOG=1 passes the browser's own output through.
export function launch(name) {
  const dumpio = process.env.BROWSER_LOG === '1';
  return puppeteer.launch({
    headless: true, protocolTimeout: SUITE_TIMEOUT, dumpio, ...BROWSERS[name],
  });
}
