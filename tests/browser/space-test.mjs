// Runs the demo Space in headless Chromium (Debian's `chromium`, driven by playwright-core; no
// browser download) and writes what it drew, for tests/it/space.rs to compare with the CLI.
//
//   node space-test.mjs SPACE_DIR HUB_URL OUT_DIR SEED THREADS
//
// Serves SPACE_DIR with the headers its README.md front matter sets (`custom_headers`), its
// space.json pointed at HUB_URL (the Hub emulator, whose resolve route must answer with CORS
// headers) and at this package's onnxruntime-web files (the pinned version's, which the page
// checks against the sha256 the tool wrote). For every class but the unconditional one: one image
// for SEED, written as OUT_DIR/<class>.f32 (the final state), plus OUT_DIR/noise.f32 and
// OUT_DIR/result.json (times, provider), and a screenshot OUT_DIR/page.png.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [spaceDir, hubUrl, outDir, seed, threads] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const ortDist = path.join(here, 'node_modules', 'onnxruntime-web', 'dist');

const readme = fs.readFileSync(path.join(spaceDir, 'README.md'), 'utf8');
const headers = {};
const block = readme.split('\n---\n')[0];
const match = block.match(/custom_headers:\n((?: {2}.*\n?)+)/);
for (const line of (match ? match[1] : '').split('\n')) {
  const kv = line.trim().match(/^([a-z-]+):\s*(.+)$/);
  if (kv) headers[kv[1]] = kv[2];
}
if (Object.keys(headers).length !== 3) throw new Error(`custom_headers not found in README.md: ${JSON.stringify(headers)}`);

const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm' };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let file;
  let body;
  if (url.pathname.startsWith('/_ort/')) file = path.join(ortDist, path.basename(url.pathname));
  else if (url.pathname === '/space.json') {
    const space = JSON.parse(fs.readFileSync(path.join(spaceDir, 'space.json'), 'utf8'));
    space.endpoint = hubUrl;
    space.onnxruntime_web.base = `http://127.0.0.1:${server.address().port}/_ort/`;
    body = Buffer.from(JSON.stringify(space));
  } else file = path.join(spaceDir, url.pathname === '/' ? 'index.html' : path.basename(url.pathname));
  if (!body) {
    if (!fs.existsSync(file)) {
      res.writeHead(404);
      return res.end();
    }
    body = fs.readFileSync(file);
  }
  res.writeHead(200, { 'content-type': types[path.extname(file || '.json')] || 'application/octet-stream', ...headers });
  res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => logs.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) logs.push(`answer ${r.status()}: ${r.request().method()} ${r.url()}`); });
  await page.goto(`${origin}/?backend=wasm${threads ? `&threads=${threads}` : ''}`);
  try {
    await page.waitForFunction(() => window.tinydit || /Error/.test(document.getElementById('status').textContent), null, { timeout: 120000 });
  } catch (e) {
    throw new Error(`${e.message}\n${logs.join('\n')}`);
  }
  const status = await page.textContent('#status');
  if (status.startsWith('Error')) throw new Error(`${status}\n${logs.join('\n')}`);
  const info = await page.evaluate(() => ({ contract: window.tinydit.contract, space: window.tinydit.space, isolated: window.crossOriginIsolated }));
  const results = { isolated: info.isolated, provider: await page.textContent('#provider'), images: [] };
  fs.mkdirSync(outDir, { recursive: true });
  for (let breed = 0; breed < info.contract.classes.length; breed++) {
    if (info.contract.cfg === 'explicit' && breed === info.contract.uncond_class) continue;
    const r = await page.evaluate(async ({ breed, seed, steps, scale }) => {
      const out = await window.tinydit.generate({ breed, seed, steps, scale });
      return { image: Array.from(out.image), noise: Array.from(out.noise), ms: out.ms };
    }, { breed, seed, steps: info.space.defaults.steps, scale: info.space.defaults.guidance_scale });
    fs.writeFileSync(path.join(outDir, `${breed}.f32`), Buffer.from(new Float32Array(r.image).buffer));
    if (breed === 0) fs.writeFileSync(path.join(outDir, 'noise.f32'), Buffer.from(new Float32Array(r.noise).buffer));
    results.images.push({ breed, ms: r.ms });
  }
  await page.evaluate(() => { document.getElementById('breed').value = String(window.tinydit.space.defaults.breed); });
  await page.click('#generate');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Done');
  await page.screenshot({ path: path.join(outDir, 'page.png'), fullPage: true });
  fs.writeFileSync(path.join(outDir, 'result.json'), JSON.stringify(results, null, 2));
  console.log(JSON.stringify(results));
} finally {
  await browser.close();
  server.close();
}
