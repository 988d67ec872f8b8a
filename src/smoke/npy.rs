//! A small NumPy `.npy` reader and writer: little-endian `float32` (and `int64` for golden
//! labels), C order, format versions 1 to 3.
//!
//! Enough for `--noise` / `--save-tensor` and golden files to round-trip with `np.load` /
//! `np.save`; anything else (big-endian, Fortran order, other dtypes, pickled objects) is refused
//! with a message that says how to convert it. The header is parsed as the small Python-literal
//! dict NumPy writes, and the declared size is checked against the file size before any
//! allocation, so a hostile header cannot ask for a huge buffer.

use std::path::Path;

use anyhow::Context as _;

use crate::error::Problem;

const MAGIC: &[u8] = b"\x93NUMPY";

/// `.npy` files larger than this are refused before reading: noise and golden tensors for a
/// smoke test are megabytes, and a mistaken path should not exhaust memory.
pub const MAX_NPY_BYTES: u64 = 4 << 30;

/// Element data of an array.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4`.
    F32(Vec<f32>),
    /// `<i8`.
    I64(Vec<i64>),
}

/// An array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy {
    /// Its shape (C order).
    pub shape: Vec<usize>,
    /// Its elements.
    pub data: NpyData,
}

impl Npy {
    /// The NumPy dtype string of the data.
    pub fn dtype(&self) -> &'static str {
        match self.data {
            NpyData::F32(_) => "float32",
            NpyData::I64(_) => "int64",
        }
    }
}

/// Reads a `.npy` file. `display` names it in messages.
pub fn read(path: &Path, display: &str) -> anyhow::Result<Npy> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("failed to read `{display}`"))?
        .len();
    if size > MAX_NPY_BYTES {
        return Err(Problem::new(format!(
            "`{display}` is {size} bytes; .npy inputs are limited to 4 GiB"
        ))
        .into());
    }
    let bytes = std::fs::read(path).with_context(|| format!("failed to read `{display}`"))?;
    parse(&bytes).map_err(|why| {
        Problem::new(format!("`{display}` is not a usable .npy file: {why}"))
            .hint(
                "save it with `np.save(path, np.ascontiguousarray(a, dtype=np.float32))` \
                 (labels: `dtype=np.int64`)",
            )
            .into()
    })
}

/// Reads a `.npy` file that must hold `float32`.
pub fn read_f32(path: &Path, display: &str) -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
    let npy = read(path, display)?;
    match npy.data {
        NpyData::F32(data) => Ok((npy.shape, data)),
        NpyData::I64(_) => Err(
            Problem::new(format!("`{display}` holds int64, float32 is needed"))
                .hint("convert it with `np.save(path, a.astype(np.float32))`")
                .into(),
        ),
    }
}

/// Parses `.npy` bytes; the error says what is wrong.
pub fn parse(bytes: &[u8]) -> Result<Npy, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("it does not start with the NumPy magic string")?;
    let (&[major, _minor], rest) = rest.split_first_chunk::<2>().ok_or("it is truncated")?;
    let (header_len, rest) = match major {
        1 => {
            let (len, rest) = rest.split_first_chunk::<2>().ok_or("it is truncated")?;
            (usize::from(u16::from_le_bytes(*len)), rest)
        }
        2 | 3 => {
            let (len, rest) = rest.split_first_chunk::<4>().ok_or("it is truncated")?;
            (u32::from_le_bytes(*len) as usize, rest)
        }
        other => return Err(format!("format version {other} is not supported")),
    };
    if rest.len() < header_len {
        return Err("its header is truncated".to_owned());
    }
    let (header, body) = rest.split_at(header_len);
    let header = std::str::from_utf8(header).map_err(|_| "its header is not text")?;
    let descr = dict_value(header, "descr").ok_or("its header has no `descr`")?;
    let fortran = dict_value(header, "fortran_order").ok_or("its header has no `fortran_order`")?;
    let shape = dict_value(header, "shape").ok_or("its header has no `shape`")?;
    match fortran {
        "False" => {}
        "True" => {
            return Err(
                "it is in Fortran order; save a C-order array (`np.ascontiguousarray`)".to_owned(),
            );
        }
        other => return Err(format!("`fortran_order` = `{other}` is not a boolean")),
    }
    let shape = parse_shape(shape)?;
    let count = shape
        .iter()
        .try_fold(1_usize, |acc, &d| acc.checked_mul(d))
        .ok_or("its shape overflows")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let item = match descr {
        "<f4" => 4,
        "<i8" => 8,
        other => {
            let name = match other {
                ">f4" | ">i8" => "big-endian data",
                "<f8" => "float64",
                "<f2" => "float16",
                "<i4" => "int32",
                "|O" => "pickled Python objects",
                _ => other,
            };
            return Err(format!(
                "it holds {name} (`{other}`); little-endian float32 (`<f4`) or int64 (`<i8`) is needed"
            ));
        }
    };
    let expected = count.checked_mul(item).ok_or("its shape overflows")?;
    if body.len() != expected {
        return Err(format!(
            "its shape {shape:?} needs {expected} data bytes, the file has {}",
            body.len()
        ));
    }
    let data = if descr == "<f4" {
        NpyData::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    } else {
        NpyData::I64(
            body.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        )
    };
    Ok(Npy { shape, data })
}

/// The text of `'key': value` in NumPy's header dict, up to the next top-level comma.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let start = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?
        + key.len()
        + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0_i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(rest[..=i].trim());
                }
            }
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("`shape` = `{text}` is not a tuple"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("`shape` = `{text}` is not a tuple of sizes"))
        })
        .collect()
}

/// Encodes a float32 array as `.npy` (format 1.0, C order).
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // NumPy pads the header with spaces so the data starts at a multiple of 64 bytes.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(
        &u16::try_from(header.len())
            .expect("a shape header is far below 64 KiB")
            .to_le_bytes(),
    );
    out.extend_from_slice(header.as_bytes());
    for value in data {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// Writes a float32 array as `.npy` through a temporary sibling and a rename
/// ([`crate::output::write_atomically`]): a symlink at `path` is replaced, never followed.
/// `display` names the file in messages.
pub fn write_f32(path: &Path, display: &str, shape: &[usize], data: &[f32]) -> anyhow::Result<()> {
    crate::output::write_atomically(path, &encode_f32(shape, data))
        .with_context(|| format!("failed to write `{display}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_round_trips() {
        let data = [1.5_f32, -0.0, f32::MAX, 3.25, 7.0, -2.0];
        let bytes = encode_f32(&[2, 3], &data);
        assert_eq!((bytes.len() - 24) % 64, 0, "header padded to 64");
        assert_eq!(&bytes[..6], MAGIC);
        let npy = parse(&bytes).expect("parse");
        assert_eq!(npy.shape, [2, 3]);
        assert_eq!(npy.data, NpyData::F32(data.to_vec()));
        let one = parse(&encode_f32(&[3], &data[..3])).expect("1-d");
        assert_eq!(one.shape, [3]);
    }

    /// Bytes `np.save` writes for `np.arange(3, dtype=np.int64)` and a 0-d float32.
    #[test]
    fn numpy_headers_parse() {
        let mut bytes = MAGIC.to_vec();
        let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
        let padded = format!("{header:<117}\n");
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
        bytes.extend_from_slice(padded.as_bytes());
        for v in 0_i64..3 {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let npy = parse(&bytes).expect("int64");
        assert_eq!(npy.data, NpyData::I64(vec![0, 1, 2]));
        let scalar = parse(&encode_f32(&[], &[2.0])).expect("0-d");
        assert!(scalar.shape.is_empty());
    }

    fn with_header(header: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn other_layouts_and_types_are_refused_clearly() {
        let cases = [
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
                "Fortran order",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                "float64",
            ),
            (
                "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                "big-endian",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }",
                "needs 4000000000000000000 data bytes",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }",
                "overflows",
            ),
        ];
        for (header, expected) in cases {
            let err = parse(&with_header(header, &[0; 4])).expect_err(header);
            assert!(err.contains(expected), "{err}");
        }
        assert!(parse(b"PK\x03\x04").expect_err("zip").contains("magic"));
    }
}
