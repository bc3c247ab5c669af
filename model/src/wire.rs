//! Protobuf wire primitives for the two encoders that write OTLP bytes
//! directly (`encode` for model spans, the exporter's for the SDK's
//! `SpanData`): field keys, varints and the sizes prost would compute,
//! each skipping a proto3 default as prost does.

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

pub fn varint_len(value: u64) -> usize {
    // 1 byte per started group of 7 bits (prost's formula).
    ((((value | 1).leading_zeros() ^ 63) * 9 + 73) / 64) as usize
}

pub fn key_len(tag: u32) -> usize {
    varint_len(u64::from(tag) << 3)
}

pub fn len_field(tag: u32, len: usize) -> usize {
    key_len(tag) + varint_len(len as u64) + len
}

pub fn str_field_len(tag: u32, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        len_field(tag, text.len())
    }
}

pub fn varint_field_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + varint_len(value)
    }
}

pub fn fixed_field_len(tag: u32, is_zero: bool, width: usize) -> usize {
    if is_zero { 0 } else { key_len(tag) + width }
}

/// `int32` fields are sign-extended to 64 bits on the wire.
pub fn int32(value: i32) -> u64 {
    i64::from(value) as u64
}

pub fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

pub fn key(buf: &mut Vec<u8>, tag: u32, wire_type: u8) {
    varint(buf, u64::from(tag) << 3 | u64::from(wire_type));
}

pub fn bytes_field_always(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    key(buf, tag, LEN);
    varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

pub fn str_field(buf: &mut Vec<u8>, tag: u32, text: &str) {
    if !text.is_empty() {
        bytes_field_always(buf, tag, text.as_bytes());
    }
}

pub fn varint_field(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        key(buf, tag, VARINT);
        varint(buf, value);
    }
}

pub fn fixed64_field(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        key(buf, tag, FIXED64);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

pub fn fixed32_field(buf: &mut Vec<u8>, tag: u32, value: u32) {
    if value != 0 {
        key(buf, tag, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}
