//! Tensors as a checkpoint describes them: element types, views of storages, and the byte-level
//! work done on them (gathering views in row-major order, byteswapping, casting, counting NaN/Inf).
//!
//! Nothing here trusts the checkpoint: every extent is computed with checked arithmetic and
//! validated against the storage before any byte is read or any buffer is sized.

use safetensors::Dtype;

/// The most dimensions a tensor may have; torch's own limit is 64.
pub const MAX_RANK: usize = 64;

/// Bytes per element of a safetensors dtype this converter handles (all are whole bytes).
pub fn element_size(dtype: Dtype) -> u64 {
    (dtype.bitsize() / 8) as u64
}

/// A torch dtype by its attribute name (`torch.float32`, `torch.half`, ...): `Some(Ok(dtype))`
/// when safetensors can hold it, `Some(Err(()))` for a real torch dtype it cannot hold
/// (complex128, complex32, quantized, bit and sub-byte types), `None` for a name that is no
/// torch dtype at all.
pub fn torch_dtype(name: &str) -> Option<Result<Dtype, ()>> {
    Some(Ok(match name {
        "float64" | "double" => Dtype::F64,
        "float32" | "float" => Dtype::F32,
        "float16" | "half" => Dtype::F16,
        "bfloat16" => Dtype::BF16,
        "int64" | "long" => Dtype::I64,
        "int32" | "int" => Dtype::I32,
        "int16" | "short" => Dtype::I16,
        "int8" => Dtype::I8,
        "uint8" => Dtype::U8,
        "bool" => Dtype::BOOL,
        "complex64" | "cfloat" => Dtype::C64,
        "uint16" => Dtype::U16,
        "uint32" => Dtype::U32,
        "uint64" => Dtype::U64,
        "float8_e4m3fn" => Dtype::F8_E4M3,
        "float8_e5m2" => Dtype::F8_E5M2,
        "float8_e4m3fnuz" => Dtype::F8_E4M3FNUZ,
        "float8_e5m2fnuz" => Dtype::F8_E5M2FNUZ,
        "float8_e8m0fnu" => Dtype::F8_E8M0,
        "complex128" | "cdouble" | "complex32" | "chalf" | "bcomplex32" | "qint8" | "quint8"
        | "qint32" | "quint4x2" | "quint2x4" | "bits1x8" | "bits2x4" | "bits4x2" | "bits8"
        | "bits16" | "bit" | "float4_e2m1fn_x2" | "uint1" | "uint2" | "uint3" | "uint4"
        | "uint5" | "uint6" | "uint7" | "int1" | "int2" | "int3" | "int4" | "int5" | "int6"
        | "int7" => return Some(Err(())),
        _ => return None,
    }))
}

/// What a storage class global (`torch.FloatStorage`, `torch.UntypedStorage`, ...) stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageClass {
    /// A typed storage whose elements safetensors can hold.
    Typed(Dtype),
    /// `UntypedStorage` (numel counts bytes; the dtype comes from `_rebuild_tensor_v3`).
    Untyped,
    /// A typed storage without a safetensors equivalent (complex128, quantized).
    Unsupported,
}

/// A storage class by its name in the `torch` or `torch.storage` module; `None` if it is none.
pub fn storage_class(name: &str) -> Option<StorageClass> {
    Some(match name {
        "DoubleStorage" => StorageClass::Typed(Dtype::F64),
        "FloatStorage" => StorageClass::Typed(Dtype::F32),
        "HalfStorage" => StorageClass::Typed(Dtype::F16),
        "BFloat16Storage" => StorageClass::Typed(Dtype::BF16),
        "LongStorage" => StorageClass::Typed(Dtype::I64),
        "IntStorage" => StorageClass::Typed(Dtype::I32),
        "ShortStorage" => StorageClass::Typed(Dtype::I16),
        "CharStorage" => StorageClass::Typed(Dtype::I8),
        "ByteStorage" => StorageClass::Typed(Dtype::U8),
        "BoolStorage" => StorageClass::Typed(Dtype::BOOL),
        "ComplexFloatStorage" => StorageClass::Typed(Dtype::C64),
        "UntypedStorage" | "Storage" | "TypedStorage" => StorageClass::Untyped,
        "ComplexDoubleStorage"
        | "QInt8Storage"
        | "QUInt8Storage"
        | "QInt32Storage"
        | "QUInt4x2Storage"
        | "QUInt2x4Storage" => StorageClass::Unsupported,
        _ => return None,
    })
}

/// A tensor's view of a storage, in elements of its dtype, already validated against the
/// storage's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Element type.
    pub dtype: Dtype,
    /// Offset of the first element, in elements.
    pub offset: u64,
    /// Sizes.
    pub shape: Vec<u64>,
    /// Strides in elements; never negative.
    pub stride: Vec<u64>,
}

impl View {
    /// Validates a view of a storage holding `storage_elements` elements. Negative values,
    /// mismatched ranks, overflowing products and views past the end are errors, never panics.
    pub fn new(
        dtype: Dtype,
        offset: i128,
        shape: &[i128],
        stride: &[i128],
        storage_elements: u64,
    ) -> Result<Self, String> {
        if shape.len() != stride.len() {
            return Err(format!(
                "size has {} dimensions but stride has {}",
                shape.len(),
                stride.len()
            ));
        }
        if shape.len() > MAX_RANK {
            return Err(format!("{} dimensions (at most {MAX_RANK})", shape.len()));
        }
        let to_u64 = |value: i128, what: &str| {
            if value < 0 {
                Err(format!("negative {what} `{value}`"))
            } else {
                u64::try_from(value).map_err(|_| format!("{what} `{value}` does not fit 64 bits"))
            }
        };
        let offset = to_u64(offset, "storage offset")?;
        let shape = shape
            .iter()
            .map(|&s| to_u64(s, "size"))
            .collect::<Result<Vec<_>, _>>()?;
        let stride = stride
            .iter()
            .map(|&s| to_u64(s, "stride"))
            .collect::<Result<Vec<_>, _>>()?;
        let view = Self {
            dtype,
            offset,
            shape,
            stride,
        };
        let numel = view
            .numel_checked()
            .ok_or_else(|| format!("the shape {:?} overflows 64 bits", view.shape))?;
        numel
            .checked_mul(element_size(dtype))
            .ok_or_else(|| format!("the shape {:?} overflows 64 bits in bytes", view.shape))?;
        if numel > 0 {
            let mut last = offset;
            for (&size, &stride) in view.shape.iter().zip(&view.stride) {
                let step = (size - 1)
                    .checked_mul(stride)
                    .and_then(|s| last.checked_add(s))
                    .ok_or_else(|| "the view's extent overflows 64 bits".to_owned())?;
                last = step;
            }
            if last >= storage_elements {
                return Err(format!(
                    "the view reaches element {last} of a storage of {storage_elements} elements \
                     (offset {offset}, size {:?}, stride {:?})",
                    view.shape, view.stride
                ));
            }
        }
        Ok(view)
    }

    fn numel_checked(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &s| acc.checked_mul(s))
    }

    /// Number of elements (validated not to overflow in [`View::new`]).
    pub fn numel(&self) -> u64 {
        self.numel_checked()
            .expect("View::new rejected overflowing shapes")
    }

    /// Bytes of the contiguous tensor.
    pub fn nbytes(&self) -> u64 {
        self.numel() * element_size(self.dtype)
    }

    /// Whether the elements are laid out row-major without gaps (dimensions of size 1 may have
    /// any stride, as in torch).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1u64;
        for (&size, &stride) in self.shape.iter().zip(&self.stride).rev() {
            if size != 1 && stride != expected {
                return false;
            }
            expected = expected.saturating_mul(size);
        }
        true
    }

    /// The byte range of the storage this view touches, relative to the storage start:
    /// `(first byte, byte count)`. Empty tensors touch nothing.
    pub fn byte_extent(&self) -> (u64, u64) {
        if self.numel() == 0 {
            return (0, 0);
        }
        let size = element_size(self.dtype);
        let last = self
            .shape
            .iter()
            .zip(&self.stride)
            .fold(self.offset, |acc, (&n, &s)| acc + (n - 1) * s);
        (self.offset * size, (last - self.offset + 1) * size)
    }

    /// Copies the view's elements in row-major order out of `extent`, the bytes returned by
    /// [`View::byte_extent`], into `out` (cleared first).
    pub fn gather(&self, extent: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let size = element_size(self.dtype) as usize;
        if self.numel() == 0 {
            return;
        }
        if self.is_contiguous() {
            out.extend_from_slice(&extent[..self.nbytes() as usize]);
            return;
        }
        out.reserve(self.nbytes() as usize);
        let rank = self.shape.len();
        let mut index = vec![0u64; rank];
        loop {
            let element: u64 = index.iter().zip(&self.stride).map(|(i, s)| i * s).sum();
            let start = element as usize * size;
            out.extend_from_slice(&extent[start..start + size]);
            // Odometer increment, last dimension fastest.
            let mut dim = rank;
            loop {
                if dim == 0 {
                    return;
                }
                dim -= 1;
                index[dim] += 1;
                if index[dim] < self.shape[dim] {
                    break;
                }
                index[dim] = 0;
            }
        }
    }
}

/// Reverses the byte order of each element (each component for complex types) in place.
pub fn byteswap(dtype: Dtype, bytes: &mut [u8]) {
    let width = match dtype {
        Dtype::C64 => 4,
        other => element_size(other) as usize,
    };
    if width > 1 {
        for chunk in bytes.chunks_exact_mut(width) {
            chunk.reverse();
        }
    }
}

/// NaN and infinity counts of little-endian float data; zero for other types.
// The masks spell out each format's exponent and mantissa fields.
#[allow(clippy::verbose_bit_mask)]
pub fn count_non_finite(dtype: Dtype, bytes: &[u8]) -> (u64, u64) {
    let mut nan = 0u64;
    let mut inf = 0u64;
    let mut tally = |is_nan: bool, is_inf: bool| {
        nan += u64::from(is_nan);
        inf += u64::from(is_inf);
    };
    match dtype {
        Dtype::F64 => {
            for c in bytes.chunks_exact(8) {
                let x = f64::from_le_bytes(c.try_into().expect("chunk of 8"));
                tally(x.is_nan(), x.is_infinite());
            }
        }
        Dtype::F32 | Dtype::C64 => {
            for c in bytes.chunks_exact(4) {
                let x = f32::from_le_bytes(c.try_into().expect("chunk of 4"));
                tally(x.is_nan(), x.is_infinite());
            }
        }
        Dtype::F16 => {
            for c in bytes.chunks_exact(2) {
                let b = u16::from_le_bytes([c[0], c[1]]);
                let special = b & 0x7c00 == 0x7c00;
                tally(special && b & 0x03ff != 0, special && b & 0x03ff == 0);
            }
        }
        Dtype::BF16 => {
            for c in bytes.chunks_exact(2) {
                let b = u16::from_le_bytes([c[0], c[1]]);
                let special = b & 0x7f80 == 0x7f80;
                tally(special && b & 0x007f != 0, special && b & 0x007f == 0);
            }
        }
        Dtype::F8_E5M2 => {
            for &b in bytes {
                let special = b & 0x7c == 0x7c;
                tally(special && b & 0x03 != 0, special && b & 0x03 == 0);
            }
        }
        Dtype::F8_E4M3 => {
            for &b in bytes {
                tally(b & 0x7f == 0x7f, false);
            }
        }
        Dtype::F8_E4M3FNUZ | Dtype::F8_E5M2FNUZ => {
            for &b in bytes {
                tally(b == 0x80, false);
            }
        }
        Dtype::F8_E8M0 => {
            for &b in bytes {
                tally(b == 0xff, false);
            }
        }
        _ => {}
    }
    (nan, inf)
}

/// Whether `--dtype` may convert tensors of this type (floating point of 16 bits or more).
pub fn is_castable(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F64 | Dtype::F32 | Dtype::F16 | Dtype::BF16)
}

/// Converts little-endian `from` data to `to`, appending to `out`. A finite value the target
/// cannot hold (it would become infinite) is an error giving its index and value; NaN and
/// infinities carry over. F64 sources narrow through f32 for the 16-bit targets.
pub fn cast(from: Dtype, to: Dtype, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let count = bytes.len() / element_size(from) as usize;
    out.reserve(count * element_size(to) as usize);
    for i in 0..count {
        let value = decode(from, bytes, i);
        match to {
            Dtype::F64 => out.extend_from_slice(&value.to_le_bytes()),
            Dtype::F32 => {
                let narrow = value as f32;
                if narrow.is_infinite() && value.is_finite() {
                    return Err(overflow(i, value, "F32"));
                }
                out.extend_from_slice(&narrow.to_le_bytes());
            }
            Dtype::F16 => {
                let bits = f32_to_f16(value as f32)
                    .filter(|_| (value as f32).is_finite() || !value.is_finite())
                    .ok_or_else(|| overflow(i, value, "F16"))?;
                out.extend_from_slice(&bits.to_le_bytes());
            }
            Dtype::BF16 => {
                let bits = f32_to_bf16(value as f32)
                    .filter(|_| (value as f32).is_finite() || !value.is_finite())
                    .ok_or_else(|| overflow(i, value, "BF16"))?;
                out.extend_from_slice(&bits.to_le_bytes());
            }
            other => return Err(format!("cannot cast to {other:?}")),
        }
    }
    Ok(())
}

fn overflow(index: usize, value: f64, target: &str) -> String {
    format!("element {index} = {value} is out of the {target} range")
}

fn decode(dtype: Dtype, bytes: &[u8], i: usize) -> f64 {
    match dtype {
        Dtype::F64 => f64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes")),
        Dtype::F32 => f64::from(f32::from_le_bytes(
            bytes[i * 4..i * 4 + 4].try_into().expect("4 bytes"),
        )),
        Dtype::F16 => f64::from(f16_to_f32(u16::from_le_bytes([
            bytes[i * 2],
            bytes[i * 2 + 1],
        ]))),
        Dtype::BF16 => f64::from(bf16_to_f32(u16::from_le_bytes([
            bytes[i * 2],
            bytes[i * 2 + 1],
        ]))),
        other => unreachable!("is_castable excludes {other:?}"),
    }
}

/// IEEE half to single precision (exact).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits & 0x8000) << 16;
    let exp = u32::from((bits >> 10) & 0x1f);
    let man = u32::from(bits & 0x03ff);
    let out = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man * 2^-24; normalise into f32.
            let shift = man.leading_zeros() - 21;
            let man = (man << shift) & 0x03ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (man << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(out)
}

/// bfloat16 to single precision (exact).
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// Single to half precision, rounding to nearest even. `None` when a finite value would overflow.
pub fn f32_to_f16(x: f32) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    if exp == 0xff {
        let nan = if man == 0 {
            0
        } else {
            0x0200 | (man >> 13) as u16
        };
        return Some(sign | 0x7c00 | nan);
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return None;
    }
    if e <= 0 {
        if e < -10 {
            return Some(sign);
        }
        let m = man | 0x0080_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rem = m & ((1u32 << shift) - 1);
        let mut r = m >> shift;
        if rem > half || (rem == half && r & 1 == 1) {
            r += 1;
        }
        return Some(sign | r as u16);
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r += 1;
    }
    if r >= 0x7c00 {
        return None;
    }
    Some(sign | r as u16)
}

/// Single precision to bfloat16, rounding to nearest even. `None` when a finite value would
/// overflow.
pub fn f32_to_bf16(x: f32) -> Option<u16> {
    let bits = x.to_bits();
    if x.is_nan() {
        return Some(((bits >> 16) | 0x0040) as u16);
    }
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16;
    let out = rounded as u16;
    if x.is_finite() && out & 0x7f80 == 0x7f80 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn views_are_validated_with_checked_arithmetic() {
        assert!(View::new(Dtype::F32, 0, &[2, 3], &[3, 1], 6).is_ok());
        let oob = View::new(Dtype::F32, 4, &[3], &[1], 6).expect_err("past the end");
        assert!(oob.contains("element 6"), "{oob}");
        let huge = 1i128 << 40;
        let overflow =
            View::new(Dtype::F32, 0, &[huge, huge, huge], &[1, 1, 1], 6).expect_err("numel");
        assert!(overflow.contains("overflows"), "{overflow}");
        let wide = View::new(Dtype::F32, 0, &[2], &[1 << 80], 6).expect_err("stride");
        assert!(wide.contains("does not fit 64 bits"), "{wide}");
        assert!(View::new(Dtype::F32, 5, &[3], &[-1], 6).is_err());
        assert!(View::new(Dtype::F32, -1, &[1], &[1], 6).is_err());
        assert!(View::new(Dtype::F32, 0, &[2], &[1, 1], 6).is_err());
        // Empty tensors touch nothing, whatever their offset.
        assert!(View::new(Dtype::F32, 0, &[0, 3], &[3, 1], 0).is_ok());
    }

    #[test]
    fn transposed_views_gather_row_major() {
        let storage: Vec<u8> = (0u8..6).collect();
        let view = View::new(Dtype::U8, 0, &[3, 2], &[1, 3], 6).expect("valid");
        assert!(!view.is_contiguous());
        let (start, len) = view.byte_extent();
        let mut out = Vec::new();
        view.gather(&storage[start as usize..(start + len) as usize], &mut out);
        assert_eq!(out, [0, 3, 1, 4, 2, 5]);
        let column = View::new(Dtype::U8, 1, &[2], &[3], 6).expect("valid");
        let (start, len) = column.byte_extent();
        assert_eq!((start, len), (1, 4));
        column.gather(&storage[1..5], &mut out);
        assert_eq!(out, [1, 4]);
    }

    #[test]
    fn half_precision_round_trips_and_rounds_to_even() {
        for bits in [
            0u16, 1, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0x8001, 0xfbff, 0x7c00,
        ] {
            assert_eq!(f32_to_f16(f16_to_f32(bits)), Some(bits), "{bits:#x}");
        }
        assert_eq!(f32_to_f16(1.0), Some(0x3c00));
        assert_eq!(f32_to_f16(65504.0), Some(0x7bff));
        assert_eq!(f32_to_f16(65520.0), None, "rounds past the max");
        assert_eq!(f32_to_f16(1e-8), Some(0));
        // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1.0).
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), Some(0x3c00));
        assert_eq!(f32_to_bf16(1.0), Some(0x3f80));
        assert_eq!(f32_to_bf16(f32::MAX), None);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }

    #[test]
    fn casting_refuses_values_out_of_range() {
        let data: Vec<u8> = [1.5f32, 70000.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut out = Vec::new();
        let err = cast(Dtype::F32, Dtype::F16, &data, &mut out).expect_err("too big");
        assert!(err.contains("element 1 = 70000"), "{err}");
        let ok: Vec<u8> = [1.5f32, f32::INFINITY]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        cast(Dtype::F32, Dtype::F16, &ok, &mut out).expect("inf carries over");
        assert_eq!(out, [0x00, 0x3e, 0x00, 0x7c]);
    }

    #[test]
    fn non_finite_values_are_counted_per_dtype() {
        let data: Vec<u8> = [f32::NAN, 1.0, f32::INFINITY, f32::NEG_INFINITY]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(count_non_finite(Dtype::F32, &data), (1, 2));
        assert_eq!(
            count_non_finite(Dtype::F16, &[0x00, 0x7e, 0x00, 0x7c]),
            (1, 1)
        );
        assert_eq!(count_non_finite(Dtype::I32, &data), (0, 0));
    }

    #[test]
    fn dtype_names_cover_torch_and_refuse_what_safetensors_lacks() {
        assert_eq!(torch_dtype("half"), Some(Ok(Dtype::F16)));
        assert_eq!(torch_dtype("float8_e4m3fn"), Some(Ok(Dtype::F8_E4M3)));
        assert_eq!(torch_dtype("complex128"), Some(Err(())));
        assert_eq!(torch_dtype("hub"), None);
        assert_eq!(
            storage_class("FloatStorage"),
            Some(StorageClass::Typed(Dtype::F32))
        );
        assert_eq!(
            storage_class("ComplexDoubleStorage"),
            Some(StorageClass::Unsupported)
        );
    }
}
