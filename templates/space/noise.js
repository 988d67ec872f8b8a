// The project's seeded Gaussian noise (src/smoke/noise.rs), bit for bit: SplitMix64 in BigInt
// (exact modulo 2^64), Marsaglia's polar method and a logarithm built from + - * / and sqrt in
// IEEE doubles (what JavaScript numbers are), each value rounded once to float32. A seed gives
// the same noise bits here, in the CLI (`tinydit-release sample --seed`) and in Python.
const MASK = (1n << 64n) - 1n;
const LN2 = 0.6931471805599453;
const SQRT2 = 1.4142135623730951;
const scratch = new DataView(new ArrayBuffer(8));

function ln(q) {
  scratch.setFloat64(0, q);
  const hi = scratch.getUint32(0);
  let exponent = ((hi >>> 20) & 0x7ff) - 1023;
  scratch.setUint32(0, (hi & 0x000fffff) | 0x3ff00000);
  let fraction = scratch.getFloat64(0);
  if (fraction > SQRT2) {
    fraction /= 2;
    exponent += 1;
  }
  const w = (fraction - 1) / (fraction + 1);
  const w2 = w * w;
  let series = 1 / 29;
  for (let k = 13; k >= 0; k--) series = series * w2 + 1 / (2 * k + 1);
  return exponent * LN2 + (2 * w) * series;
}

export class NoiseStream {
  constructor(seed) {
    this.state = BigInt.asUintN(64, BigInt(seed));
    this.spare = null;
  }

  nextU64() {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }

  uniform() {
    return (Number(this.nextU64() >> 12n) + 0.5) * 2 ** -51 - 1;
  }

  nextNormal() {
    if (this.spare !== null) {
      const spare = this.spare;
      this.spare = null;
      return spare;
    }
    for (;;) {
      const u = this.uniform();
      const v = this.uniform();
      const q = u * u + v * v;
      if (q >= 1 || q === 0) continue;
      const m = Math.sqrt((-2 * ln(q)) / q);
      this.spare = Math.fround(v * m);
      return Math.fround(u * m);
    }
  }

  fill(out) {
    for (let i = 0; i < out.length; i++) out[i] = this.nextNormal();
    return out;
  }
}
