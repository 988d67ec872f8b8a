// Runs the generator with onnxruntime-web off the page's thread: loads the pinned runtime (each
// file checked against its sha256 before use), the release's generator (checked against the
// sha256 in the release's SHA256SUMS), and samples with Euler steps exactly as
// `tinydit-release sample` does (src/smoke/sampler.rs): every float32 operation rounded as the
// CLI rounds it, guidance applied once.
import { NoiseStream } from './noise.js';

let ort = null;
let session = null;
let contract = null;
let provider = null;

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function fetchChecked(url, sha256, what, onProgress) {
  const response = await fetch(url, { mode: 'cors', credentials: 'omit' });
  if (!response.ok) throw new Error(`${what}: ${response.status} ${response.statusText} from ${url}`);
  const total = Number(response.headers.get('content-length')) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (onProgress) onProgress(received, total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  const found = await sha256Hex(bytes);
  if (found !== sha256) throw new Error(`${what}: sha256 ${found} is not the released ${sha256} (${url})`);
  return bytes;
}

async function loadRuntime(runtime, wantGpu, threads) {
  const flavour = wantGpu ? runtime.webgpu : runtime.wasm;
  const module = await fetchChecked(runtime.base + flavour.module, flavour.module_sha256, flavour.module);
  const url = URL.createObjectURL(new Blob([module], { type: 'text/javascript' }));
  ort = await import(url);
  ort.env.wasm.wasmBinary = await fetchChecked(runtime.base + flavour.binary, flavour.binary_sha256, flavour.binary);
  ort.env.wasm.numThreads = threads;
}

async function load(message) {
  const { space, threads: asked } = message;
  contract = message.contract;
  const gpu = Boolean(self.navigator.gpu) && !message.forceWasm && (await self.navigator.gpu.requestAdapter().catch(() => null));
  const threads = asked || (self.crossOriginIsolated ? Math.min(4, self.navigator.hardwareConcurrency || 1) : 1);
  await loadRuntime(space.onnxruntime_web, Boolean(gpu), threads);
  const generator = space.generator;
  const model = await fetchChecked(message.modelUrl, generator.sha256, generator.file, (done, total) =>
    self.postMessage({ type: 'download', done, total: total || generator.bytes }),
  );
  provider = gpu ? 'webgpu' : 'wasm';
  session = await ort.InferenceSession.create(model, { executionProviders: [provider] });
  self.postMessage({ type: 'loaded', provider, threads: provider === 'wasm' ? threads : null, isolated: self.crossOriginIsolated });
}

// Euler flow matching, t from 0 (noise) to 1 (image): x += dt * v, all in float32.
async function generate({ breed, steps, scale, seed }) {
  const [c, h, w] = [contract.channels, contract.image_size, contract.image_size];
  const len = c * h * w;
  const noise = new NoiseStream(seed).fill(new Float32Array(len));
  const explicit = contract.cfg === 'explicit';
  const rows = explicit ? 2 : 1;
  const x = new Float32Array(rows * len);
  x.set(noise);
  const labels = BigInt64Array.from(explicit ? [BigInt(breed), BigInt(contract.uncond_class)] : [BigInt(breed)]);
  const s = Math.fround(scale);
  const dt = Math.fround(1 / steps);
  const started = performance.now();
  for (let i = 0; i < steps; i++) {
    if (explicit) x.copyWithin(len, 0, len);
    const t = Math.fround(i / steps);
    const feeds = {
      [contract.io.noise]: new ort.Tensor('float32', x, [rows, c, h, w]),
      [contract.io.timestep]: new ort.Tensor('float32', new Float32Array(rows).fill(t), [rows]),
      [contract.io.label]: new ort.Tensor('int64', labels, [rows]),
    };
    const out = await session.run(feeds);
    const v = out[contract.io.output].data;
    // A baked-guidance graph already returns guided velocities: they are used as they are.
    for (let j = 0; j < len; j++) {
      const velocity = explicit ? Math.fround(v[len + j] + Math.fround(s * Math.fround(v[j] - v[len + j]))) : v[j];
      x[j] = Math.fround(x[j] + Math.fround(dt * velocity));
    }
    self.postMessage({ type: 'step', step: i + 1, steps });
  }
  const ms = performance.now() - started;
  const image = x.slice(0, len);
  self.postMessage({ type: 'image', image, noise, ms, provider, shape: [c, h, w] }, [image.buffer, noise.buffer]);
}

self.onmessage = async (event) => {
  try {
    if (event.data.type === 'load') await load(event.data);
    else if (event.data.type === 'generate') await generate(event.data);
  } catch (error) {
    self.postMessage({ type: 'error', message: String(error && error.message ? error.message : error) });
  }
};
