// The page: reads space.json (written by `tinydit-release check`), the release's config.json and
// generation_config.json from the model repository at this release's tag, then draws with the
// worker. `window.tinydit.generate({...})` is the same call the Generate button makes.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function resolveUrl(space, path) {
  const segments = path.split('/').map(encodeURIComponent).join('/');
  return `${space.endpoint}/${space.model_repo}/resolve/${encodeURIComponent(space.revision)}/${segments}`;
}

async function getJson(url) {
  const response = await fetch(url, { mode: 'cors', credentials: 'omit' });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText} from ${url}`);
  return response.json();
}

function draw(image, [c, h, w]) {
  const canvas = $('image');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  const pixels = ctx.createImageData(w, h);
  const plane = h * w;
  // As the CLI's PNGs: round((clip(x, -1, 1) + 1) / 2 * 255).
  const byte = (x) => (Number.isNaN(x) ? 0 : Math.round(((Math.min(1, Math.max(-1, x)) + 1) / 2) * 255));
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) pixels.data[p * 4 + k] = byte(image[(c === 1 ? 0 : k) * plane + p]);
    pixels.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
}

async function main() {
  const space = await getJson('space.json');
  const [config, generation] = await Promise.all([
    getJson(resolveUrl(space, 'config.json')),
    getJson(resolveUrl(space, 'generation_config.json')),
  ]);
  const contract = {
    classes: config.classes,
    io: { ...config.onnx_io.inputs, output: config.onnx_io.output },
    image_size: generation.image_size,
    channels: generation.channels,
    cfg: generation.cfg,
    uncond_class: generation.uncond_class,
  };
  const breed = $('breed');
  contract.classes.forEach((name, index) => {
    if (contract.cfg === 'explicit' && index === contract.uncond_class) return;
    breed.add(new Option(name.replaceAll('_', ' '), String(index)));
  });
  breed.value = String(space.defaults.breed);
  $('steps').value = space.defaults.steps;
  $('seed').value = space.defaults.seed;
  $('scale').value = space.defaults.guidance_scale;
  if (contract.cfg !== 'explicit') {
    $('scale').disabled = true;
    $('scale-note').textContent =
      contract.cfg === 'baked' ? `guidance ${generation.cfg_scale} is baked into the model` : 'no guidance';
  }
  $('release').textContent = `${space.model_repo} at ${space.revision}, ${space.generator.variant || 'full'} generator`;

  const worker = new Worker('worker.js', { type: 'module' });
  let pending = null;
  const loaded = new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === 'download') {
        $('progress').max = data.total || 1;
        $('progress').value = data.done;
        $('status').textContent = `Downloading the generator: ${(data.done / 1e6).toFixed(1)} MB`;
      } else if (data.type === 'loaded') {
        const threads = data.threads ? `, ${data.threads} thread(s)` : '';
        $('provider').textContent = `${data.provider}${threads}${data.isolated ? ', cross-origin isolated' : ''}`;
        $('status').textContent = 'Ready';
        $('generate').disabled = false;
        resolve(data);
      } else if (data.type === 'step') {
        $('progress').max = data.steps;
        $('progress').value = data.step;
        $('status').textContent = `Step ${data.step} of ${data.steps}`;
      } else if (data.type === 'image') {
        draw(data.image, data.shape);
        $('time').textContent = `${(data.ms / 1000).toFixed(2)} s per image on ${data.provider}`;
        $('status').textContent = 'Done';
        pending?.resolve(data);
        pending = null;
      } else if (data.type === 'error') {
        $('status').textContent = `Error: ${data.message}`;
        if (pending) pending.reject(new Error(data.message));
        else reject(new Error(data.message));
        pending = null;
      }
    };
  });
  const threads = Number(params.get('threads')) || 0;
  worker.postMessage({
    type: 'load',
    space,
    contract,
    modelUrl: resolveUrl(space, space.generator.file),
    threads,
    forceWasm: params.get('backend') === 'wasm',
  });
  await loaded;

  const generate = (options) =>
    new Promise((resolve, reject) => {
      if (pending) return reject(new Error('a generation is running'));
      pending = { resolve, reject };
      $('generate').disabled = true;
      worker.postMessage({ type: 'generate', ...options });
    }).finally(() => {
      $('generate').disabled = false;
    });
  $('generate').onclick = () =>
    generate({
      breed: Number(breed.value),
      steps: Math.max(1, Math.min(1000, Number($('steps').value) || space.defaults.steps)),
      scale: Number($('scale').value),
      seed: $('seed').value.trim() || '0',
    }).catch(() => {});
  window.tinydit = { generate, contract, space };
}

window.tinyditReady = main().catch((error) => {
  $('status').textContent = `Error: ${error.message}`;
  throw error;
});
