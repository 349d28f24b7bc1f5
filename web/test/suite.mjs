// A cargo test runner for wasm32 that runs a wasm-bindgen test binary in a browser driven by
// puppeteer rather than by a WebDriver (Firefox has none packaged here):
//   CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="node web/test/suite.mjs" BROWSER=firefox \
//     cargo test --target wasm32-unknown-unknown --test browser
// It serves the binary with wasm-bindgen-test-runner's interactive mode, opens that page, waits
// for the summary line and exits with the suite's outcome.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { SUITE_TIMEOUT, launch } from './browsers.mjs';

const wasm = process.argv[2];
const name = process.env.BROWSER ?? 'firefox';

const port = await new Promise((resolve) => {
  const probe = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const runner = spawn('wasm-bindgen-test-runner', [wasm], {
  env: { ...process.env, NO_HEADLESS: '1', WASM_BINDGEN_TEST_ADDRESS: `127.0.0.1:${port}` },
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise((resolve, reject) => {
  runner.stdout.on('data', (d) => String(d).includes('available at') && resolve());
  runner.on('exit', (code) => reject(new Error(`wasm-bindgen-test-runner exited with ${code}`)));
});

// The suite's output; where the page failed, undefined within its first minute (Firefox has
// once lost its page before any test ran: it gets one more try) and null after (no retry).
// A failed page's output so far is printed, so that the test it stopped at shows.
async function run_suite(browser) {
  const started = Date.now();
  let page;
  try {
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(
      () => /test result: /.test(document.getElementById('output')?.textContent ?? ''),
      { timeout: SUITE_TIMEOUT, polling: 1000 },
    );
    return await page.evaluate(() => document.getElementById('output').textContent);
  } catch (e) {
    const cause = e.cause ? ` (${e.cause.message ?? e.cause})` : '';
    console.error(`the suite in ${name} did not finish: ${e.message}${cause}`);
    const so_far = await page
      ?.evaluate(() => document.getElementById('output')?.textContent)
      .catch((read) => `(the page could not be read: ${read.message})`);
    console.error(`its output so far:\n${so_far}`);
    await page?.close().catch(() => {});
    return Date.now() - started < 60_000 ? undefined : null;
  }
}

let passed = false;
const browser = await launch(name);
try {
  let output = await run_suite(browser);
  if (output === undefined) {
    console.error(`the page failed at its start; trying it once more`);
    output = await run_suite(browser);
  }
  if (output) {
    console.log(`the suite in ${name}:\n${output}`);
    passed = /test result: ok\./.test(output);
  }
} finally {
  await browser.close();
  runner.kill();
}
process.exit(passed ? 0 : 1);
