// The demo page in each browser of browsers.mjs (headless Chromium, and Firefox ESR where it is
// installed): serves web/www on 127.0.0.1, loads the page at two settings, waits for its draws,
// holds their histogram to the exact filtered probabilities by a chi-square test, checks
// Figure 1's samples, prints the timings and saves a screenshot as target/web-demo-<browser>.png.
// Run by `scripts/web.sh test`.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installed, launch } from './browsers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../www');
const screenshots = path.resolve(here, '../../target');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };

// Two settings: the page's defaults (top-k 50, top-p 0.9 at T = 0.8), and every other filter.
const SCENARIOS = [
  { name: 'defaults', query: '', screenshot: true },
  { name: 'cap + min-p + top-p', query: '?temperature=1.2&top_k=0&top_p=0.8&min_p=0.02&soft_cap=6&batches=8' },
];

function serve() {
  const server = http.createServer((req, res) => {
    const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const target = file.endsWith('/') ? path.join(file, 'index.html') : file;
    if (!target.startsWith(root) || !fs.existsSync(target)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(target)] ?? 'application/octet-stream' });
    fs.createReadStream(target).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// The upper 0.001 point of chi-square with df degrees of freedom (Wilson-Hilferty).
function critical(df) {
  const z = 3.0902;
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

// Pearson's statistic over bins with an expected count of 5 or more, the rest pooled.
function chiSquare(r) {
  let stat = 0, bins = 0, poolObserved = 0, poolExpected = 0;
  r.probs.forEach((p, i) => {
    const expected = p * r.draws;
    if (expected >= 5) {
      stat += (r.counts[i] - expected) ** 2 / expected;
      bins++;
    } else {
      poolObserved += r.counts[i];
      poolExpected += expected;
    }
  });
  if (poolExpected >= 5) {
    stat += (poolObserved - poolExpected) ** 2 / poolExpected;
    bins++;
  }
  return { stat, df: bins - 1 };
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

const server = await serve();
const base = `http://127.0.0.1:${server.address().port}/`;
let failed = false;
for (const name of installed()) {
  const browser = await launch(name);
  try {
    for (const scenario of SCENARIOS) {
      const page = await browser.newPage();
      await page.setViewport({ width: 1000, height: 1300 });
      page.on('console', (m) => m.type() === 'error' && console.error(`  page: ${m.text()}`));
      await page.goto(base + scenario.query);
      await page.waitForFunction(() => document.body.dataset.state !== 'loading', { timeout: 900_000 });
      const r = await page.evaluate(() => window.demoResult ?? { error: window.demoError });
      check(!r.error, `${name}, ${scenario.name}: the page failed: ${r.error}`);
      const { stat, df } = chiSquare(r);
      const line = `${name}, ${scenario.name}: ${r.draws} draws of K = ${r.cols}, ${r.kept.length} kept; ` +
        `chi-square ${stat.toFixed(1)} at df ${df} (0.001 point ${critical(df).toFixed(1)}); ` +
        `${r.gpuMsPerBatch.toFixed(1)} ms a batch of ${r.rows} on the GPU, ` +
        `${r.cpuMsPerBatch.toFixed(1)} ms reading back and sampling in wasm ` +
        `(ratio ${(r.gpuMsPerBatch / r.cpuMsPerBatch).toFixed(3)}); adapter ${r.adapter}`;
      console.log(line);
      check(r.outside === 0, `${scenario.name}: ${r.outside} draws outside the kept set`);
      check(r.draws === r.rows * r.batches, `${scenario.name}: ${r.draws} draws`);
      check(r.bytesRead === 4 * r.draws, `${scenario.name}: ${r.bytesRead} bytes read back`);
      check(df >= 3 && stat <= critical(df), `${scenario.name}: the draws do not follow the exact probabilities`);
      // Figure 1: each expectation and each sample sums to 1; at tau = 0.1 the expectation is
      // the categorical's probabilities (within sampling error of 4096 samples), at tau = 10
      // every class is near 1/5.
      const classes = [0.1, 0.35, 0.3, 0.15, 0.1];
      for (let t = 0; t < 4; t++) {
        for (const part of [0, 5]) {
          const v = r.figure1.slice(t * 10 + part, t * 10 + part + 5);
          const sum = v.reduce((a, b) => a + b, 0);
          check(Math.abs(sum - 1) < 1e-3, `Figure 1, panel ${t}: sums to ${sum}`);
        }
      }
      classes.forEach((p, k) => {
        check(Math.abs(r.figure1[k] - p) < 0.04, `Figure 1 at tau 0.1: class ${k} has ${r.figure1[k]}, not ${p}`);
        check(Math.abs(r.figure1[30 + k] - 0.2) < 0.03, `Figure 1 at tau 10: class ${k} has ${r.figure1[30 + k]}`);
      });
      if (scenario.screenshot) {
        const file = path.join(screenshots, `web-demo-${name}.png`);
        fs.mkdirSync(screenshots, { recursive: true });
        await page.screenshot({ path: file, fullPage: true });
        console.log(`screenshot: ${file}`);
      }
      await page.close();
    }
  } catch (e) {
    console.error(`page test failed in ${name}: ${e.message}`);
    failed = true;
  } finally {
    await browser.close();
  }
}
server.close();
process.exit(failed ? 1 : 0);
