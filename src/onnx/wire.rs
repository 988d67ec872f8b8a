//! The protobuf wire format, read and written field by field.
//!
//! `quantize.rs` rewrites a model without decoding it into structs: every field it does not
//! change is copied byte for byte (unknown fields, doc strings, metadata and all), and the weights
//! of an inline model are read as slices of the file's bytes, never copied into messages. Reading
//! is bounded by the buffer: every length is checked against what is left, varints stop at 10
//! bytes, and the deprecated group wire types are refused.

use std::fmt;

/// A field's value, as the wire format carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (little-endian 64 bits).
    Fixed64(u64),
    /// Wire type 2: a string, bytes, an embedded message or a packed repeated field.
    Len(&'a [u8]),
    /// Wire type 5 (little-endian 32 bits).
    Fixed32(u32),
}

/// One field: its number, its value and its bytes as written (tag included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The payload of a length-delimited field.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Len(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// A message that does not follow the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireError {}

/// The fields of one message, in the order written.
pub(crate) fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

/// Iterator of [`fields`]; stops after the first error.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let result = self.read();
        if result.is_err() {
            self.pos = self.buf.len();
        }
        Some(result)
    }
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<Field<'a>, WireError> {
        let start = self.pos;
        let key = varint(self.buf, &mut self.pos)?;
        let number = u32::try_from(key >> 3).map_err(|_| WireError("a field number overflows"))?;
        if number == 0 {
            return Err(WireError("a field has number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(varint(self.buf, &mut self.pos)?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take::<8>()?)),
            2 => {
                let len = varint(self.buf, &mut self.pos)?;
                let len = usize::try_from(len).map_err(|_| WireError("a length overflows"))?;
                if len > self.buf.len() - self.pos {
                    return Err(WireError("a length runs past the end of the message"));
                }
                let bytes = &self.buf[self.pos..self.pos + len];
                self.pos += len;
                Value::Len(bytes)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take::<4>()?)),
            _ => return Err(WireError("a field uses a group or an unknown wire type")),
        };
        Ok(Field {
            number,
            value,
            raw: &self.buf[start..self.pos],
        })
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.buf.get(self.pos..self.pos + N).ok_or(WireError(
            "a fixed-size value runs past the end of the message",
        ))?;
        self.pos += N;
        let mut out = [0_u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// Reads a varint at `pos`, at most 10 bytes.
pub(crate) fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value = 0_u64;
    for i in 0..10 {
        let byte = *buf
            .get(*pos)
            .ok_or(WireError("a varint runs past the end of the message"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError("a varint is longer than 10 bytes"))
}

/// Appends a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a varint field.
pub(crate) fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, value);
}

/// Appends a length-delimited field.
pub(crate) fn put_len_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut buf = Vec::new();
        put_varint_field(&mut buf, 1, 300);
        put_len_field(&mut buf, 8, b"name");
        buf.extend_from_slice(&[0x25, 1, 2, 3, 4]); // field 4, fixed32
        let got: Vec<Field<'_>> = fields(&buf).collect::<Result<_, _>>().expect("fields");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].value, Value::Varint(300));
        assert_eq!(got[1].bytes(), Some(&b"name"[..]));
        assert_eq!(got[2].value, Value::Fixed32(0x0403_0201));
        let joined: Vec<u8> = got.iter().flat_map(|f| f.raw.iter().copied()).collect();
        assert_eq!(joined, buf);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &[0x0a, 0x05, 1][..], // length past the end
            &[0x08][..],          // varint missing
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
            &[0x0b][..],       // group
            &[0x00, 0x00][..], // field 0
            &[0x09, 1, 2][..], // fixed64 short
        ] {
            let result: Result<Vec<_>, _> = fields(bad).collect();
            assert!(result.is_err(), "{bad:?}");
        }
    }
}
