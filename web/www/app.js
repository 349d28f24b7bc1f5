// The demo page: starts the wasm module, draws tokens and Figure 1 with the kernels, and plots
// them. Settings come from the sliders, or from the URL (?temperature=0.8&top_k=50&...), which
// is how the page test sets them. When the first draws are plotted, window.demoResult holds
// what the test checks and <body data-state> becomes "done" (or "failed").
import init, { start } from './pkg/gumbel_wgpu_web.js';

const params = new URLSearchParams(location.search);
const COLS = Number(params.get('cols') ?? 32000);
const ROWS = Number(params.get('rows') ?? 256);
const BATCHES = Number(params.get('batches') ?? 16);
const SLIDERS = ['temperature', 'top_k', 'top_p', 'min_p', 'soft_cap'];
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  parent.appendChild(el);
  return el;
}

function settings() {
  return Object.fromEntries(SLIDERS.map((id) => [id, Number($(id).value)]));
}

function showValues() {
  for (const id of SLIDERS) $(id).nextElementSibling.textContent = $(id).value;
}

// Bars: drawn frequency of the most likely kept tokens; dots: their exact probabilities.
function plotHistogram(draws) {
  const svg = $('histogram');
  svg.replaceChildren();
  const n = Math.min(draws.kept.length, 60);
  const [w, h, left, bottom] = [900, 260, 40, 30];
  const probs = draws.probs, counts = draws.counts;
  const top = Math.max(probs[0], counts[0] / draws.draws) * 1.1;
  const bw = (w - left - 10) / n;
  const y = (p) => h - bottom - (p / top) * (h - bottom - 10);
  svgEl('line', { x1: left, y1: h - bottom, x2: w, y2: h - bottom, class: 'axis' }, svg);
  for (let i = 0; i < n; i++) {
    const x = left + i * bw;
    const f = counts[i] / draws.draws;
    svgEl('rect', { x: x + 1, y: y(f), width: Math.max(bw - 2, 1), height: h - bottom - y(f), class: 'bar' }, svg);
    svgEl('circle', { cx: x + bw / 2, cy: y(probs[i]), r: 3, class: 'exact' }, svg);
    if (n <= 30 || i % 5 === 0) {
      svgEl('text', { x: x + bw / 2, y: h - bottom + 14, 'text-anchor': 'middle' }, svg).textContent = draws.kept[i];
    }
  }
  svgEl('text', { x: 4, y: 14 }, svg).textContent = `p ≤ ${top.toFixed(3)}`;
  svgEl('text', { x: w - 6, y: h - 4, 'text-anchor': 'end' }, svg).textContent =
    `token id (${draws.kept.length} kept${draws.kept.length > n ? `, first ${n} shown` : ''})`;
}

function plotFigure1(values, taus, samples) {
  const svg = $('figure1');
  svg.replaceChildren();
  const [panelW, h] = [900 / taus.length, 300];
  $('fig_samples').textContent = samples;
  taus.forEach((tau, t) => {
    const x0 = t * panelW + 20;
    svgEl('text', { x: x0, y: 16 }, svg).textContent = `τ = ${tau}`;
    for (const [row, label] of [[0, 'expectation'], [1, 'sample']]) {
      const base = 140 + row * 140;
      svgEl('text', { x: x0, y: base - 108 }, svg).textContent = label;
      for (let k = 0; k < 5; k++) {
        const v = values[t * 10 + row * 5 + k];
        svgEl('rect', { x: x0 + k * 34, y: base - v * 100, width: 28, height: v * 100, class: 'bar' }, svg);
      }
      svgEl('line', { x1: x0, y1: base, x2: x0 + 170, y2: base, class: 'axis' }, svg);
    }
  });
}

async function draw(demo, s, firstBatch) {
  const args = [s.temperature, s.top_k, s.top_p, s.min_p, s.soft_cap];
  // One batch first, so that building the pipeline stays out of the timing.
  await demo.sample(...args, 1 << 20, 1);
  let t = performance.now();
  const draws = await demo.sample(...args, firstBatch, BATCHES);
  const gpuMs = (performance.now() - t) / BATCHES;
  plotHistogram(draws);
  $('gpu_ms').textContent = gpuMs.toFixed(1);
  $('gpu_bytes').textContent = `${draws.bytes_read / BATCHES} a batch`;
  const baselineBatches = 2;
  t = performance.now();
  const cpu = await demo.sample_on_cpu(...args, baselineBatches);
  const cpuMs = (performance.now() - t) / baselineBatches;
  $('cpu_ms').textContent = cpuMs.toFixed(1);
  $('cpu_bytes').textContent = `${cpu.bytes_read / baselineBatches} a batch`;
  $('summary').textContent =
    `${draws.draws} tokens in batches of ${ROWS} rows of K = ${COLS}; ` +
    `${draws.outside} outside the kept set; the GPU sampler takes ${(gpuMs / cpuMs).toFixed(2)} ` +
    `of the time of reading the logits back and sampling in wasm.`;
  return { draws, gpuMs, cpuMs };
}

async function main() {
  await init();
  const demo = await start(COLS, ROWS);
  // wgpu gets no name for a page's adapter; the browser tells its vendor and architecture.
  const info = (await navigator.gpu?.requestAdapter())?.info;
  const named = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ');
  const adapter = named ? `${named}: ${demo.adapter()}` : demo.adapter();
  $('adapter').textContent = adapter;
  $('cols').textContent = COLS.toLocaleString('en');
  for (const id of SLIDERS) if (params.has(id)) $(id).value = params.get(id);
  showValues();

  const taus = [0.1, 0.5, 1.0, 10.0];
  const samples = 4096;
  const fig = await demo.figure1(taus, samples);
  plotFigure1(fig, taus, samples);

  const s = settings();
  const { draws, gpuMs, cpuMs } = await draw(demo, s, 0);
  window.demoResult = {
    adapter, settings: s, cols: COLS, rows: ROWS, batches: BATCHES,
    kept: Array.from(draws.kept), probs: Array.from(draws.probs), counts: Array.from(draws.counts),
    outside: draws.outside, draws: draws.draws, bytesRead: draws.bytes_read,
    gpuMsPerBatch: gpuMs, cpuMsPerBatch: cpuMs, figure1: Array.from(fig),
  };
  document.body.dataset.state = 'done';

  let next = BATCHES;
  $('controls').addEventListener('change', async () => {
    showValues();
    next += BATCHES + 1;
    await draw(demo, settings(), next);
  });
  $('controls').addEventListener('input', showValues);
}

main().catch((e) => {
  document.body.dataset.state = 'failed';
  $('adapter').textContent = `failed: ${e}`;
  window.demoError = String(e);
});
