//! Seeded Gaussian noise that is bit-identical on every machine and reproducible in Python.
//!
//! The generator is SplitMix64 (Steele, Lea, Flood 2014) feeding Marsaglia's polar method, all
//! in IEEE-754 `f64` using only `+ - * /` and `sqrt` (which IEEE-754 requires to be correctly
//! rounded), plus a natural logarithm written here from the same operations, because the C
//! library's `log` may differ by an ulp between platforms. The result is rounded once to `f32`.
//! Rust does not fuse `a * b + c` into FMA unless asked, so the same seed gives the same bytes
//! on every CPU and operating system.
//!
//! Exactly, for a seed `s` (all integer arithmetic modulo 2^64):
//!
//! 1. SplitMix64: `state += 0x9E3779B97F4A7C15; z = state; z = (z ^ (z >> 30)) *
//!    0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31)`, with
//!    `state = s` initially.
//! 2. A uniform in (-1, 1) from one draw `a`: `((a >> 12) + 0.5) * 2^-51 - 1` (exact in `f64`).
//! 3. Polar method: draw `u`, then `v`; `q = u*u + v*v`; reject the pair and draw again when
//!    `q >= 1` or `q == 0`; else `m = sqrt((-2 * ln(q)) / q)` and emit `u*m`, then `v*m`, each
//!    rounded to `f32`.
//! 4. `ln(q)`: split `q = f * 2^e` with `f` in [1, 2) from the bits; if `f > sqrt(2)` (compared
//!    as `f > 1.4142135623730951`) halve `f` and add 1 to `e`; `w = (f - 1) / (f + 1)`,
//!    `w2 = w*w`; `p = 1/29`, then for `k = 13, 12, ..., 0`: `p = p * w2 + 1/(2k + 1)`; result
//!    `e * 0.6931471805599453 + 2 * w * p` (evaluated as `(e * LN2) + ((2 * w) * p)`).
//!
//! An image of `C x H x W` values takes the next `C*H*W` outputs in C order. In the smoke test and
//! `sample`, image `k` of every class starts from the same noise: the `k`-th block of the stream
//! for the seed, so samples of different classes differ only by the class.
//!
//! In Python (pure floats are IEEE doubles, so this reproduces the bytes):
//!
//! ```python
//! import math, numpy as np
//! M = (1 << 64) - 1
//! def ln(q):
//!     f, e = math.frexp(q); f, e = f * 2.0, e - 1        # f in [1, 2)
//!     if f > 1.4142135623730951: f, e = f / 2.0, e + 1
//!     w = (f - 1.0) / (f + 1.0); w2 = w * w; p = 1.0 / 29.0
//!     for k in range(13, -1, -1): p = p * w2 + 1.0 / (2 * k + 1)
//!     return e * 0.6931471805599453 + 2.0 * w * p
//! def noise(seed, n):
//!     state, out = seed & M, []
//!     def draw():
//!         nonlocal state
//!         state = (state + 0x9E3779B97F4A7C15) & M
//!         z = state
//!         z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
//!         z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//!         return ((((z ^ (z >> 31)) >> 12) + 0.5) * 2.0**-51) - 1.0
//!     while len(out) < n:
//!         u = draw(); v = draw(); q = u * u + v * v
//!         if q >= 1.0 or q == 0.0: continue
//!         m = math.sqrt(-2.0 * ln(q) / q); out += [u * m, v * m]
//!     return np.array(out[:n], dtype=np.float32)
//! # noise(42, 13 * 3 * 32 * 32).reshape(13, 3, 32, 32)[k] is image k of the smoke test, seed 42
//! ```
//!
//! (`math.frexp` is exact; `e * LN2 + 2*w*p` groups as written in step 4.)

/// A deterministic stream of standard normal `f32` values.
#[derive(Debug, Clone)]
pub struct NoiseStream {
    state: u64,
    spare: Option<f32>,
}

const LN2: f64 = std::f64::consts::LN_2;
const SQRT2: f64 = std::f64::consts::SQRT_2;

impl NoiseStream {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (-1, 1); every step is exact in `f64`.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 12) as f64 + 0.5) * (2.0_f64).powi(-51) - 1.0
    }

    /// The next standard normal value.
    pub fn next_normal(&mut self) -> f32 {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        loop {
            let u = self.uniform();
            let v = self.uniform();
            let q = u * u + v * v;
            if q >= 1.0 || q == 0.0 {
                continue;
            }
            let m = ((-2.0 * ln(q)) / q).sqrt();
            self.spare = Some((v * m) as f32);
            return (u * m) as f32;
        }
    }

    /// Fills `out` with the next `out.len()` values.
    pub fn fill(&mut self, out: &mut [f32]) {
        for value in out {
            *value = self.next_normal();
        }
    }
}

/// Natural logarithm of a positive, finite, normal `q` (here: `0 < q < 1`, never subnormal since
/// `q >= 2^-104`), from basic IEEE operations only; about 1 ulp accurate.
fn ln(q: f64) -> f64 {
    let bits = q.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut fraction = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if fraction > SQRT2 {
        fraction /= 2.0;
        exponent += 1;
    }
    let w = (fraction - 1.0) / (fraction + 1.0);
    let w2 = w * w;
    // atanh series: ln f = 2 (w + w^3/3 + w^5/5 + ...); |w| <= 0.1716, so 15 terms reach 2^-60.
    let mut series = 1.0 / 29.0;
    for k in (0..14).rev() {
        series = series * w2 + 1.0 / f64::from(2 * k + 1);
    }
    (exponent as f64) * LN2 + (2.0 * w) * series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_the_library_to_an_ulp() {
        for q in [
            1e-30, 1e-8, 0.001, 0.1, 0.25, 0.5, 0.707, 0.708, 0.9, 0.999_999,
        ] {
            let ours = ln(q);
            let libm = q.ln();
            assert!(
                (ours - libm).abs() <= 2.0 * f64::EPSILON * libm.abs(),
                "{q}: {ours} vs {libm}"
            );
        }
    }

    #[test]
    fn same_seed_same_bits_and_sane_moments() {
        let mut a = vec![0.0; 100_001];
        let mut b = vec![0.0; 100_001];
        NoiseStream::new(7).fill(&mut a);
        NoiseStream::new(7).fill(&mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        let n = a.len() as f64;
        let mean = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = a
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        let mut c = vec![0.0; 8];
        NoiseStream::new(8).fill(&mut c);
        assert_ne!(a[..8], c[..]);
    }

    /// The first values for seed 42, as printed by the Python reproduction in the module doc.
    /// A change here breaks every published reproduction: never update it casually.
    #[test]
    fn seed_42_is_pinned() {
        let mut first = [0.0_f32; 4];
        NoiseStream::new(42).fill(&mut first);
        let bits: Vec<u32> = first.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, PINNED_42);
    }

    const PINNED_42: [u32; 4] = [0x3efc_6407, 0xbf31_aa5b, 0xbfa3_fa58, 0xbf66_cc74];
}
