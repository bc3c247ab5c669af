//! ClickHouse's RowBinary format, the few types otelite uses: little-endian
//! integers, `String` as a LEB128 length and bytes, `FixedString(N)` as N
//! bytes, `Date` as days since 1970 (UInt16), `Array(T)` as a LEB128 count
//! and the elements. Exact both ways, and far cheaper than text formats.

use super::http::ClickHouseError;

/// Appends values to a RowBinary buffer, column by column, row by row.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    pub fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn fixed(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.leb128(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// An `Array(UInt8)`: laid out as a `String` is.
    pub fn u8_array(&mut self, items: &[u8]) {
        self.bytes(items);
    }

    pub fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    pub fn strings<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a str>) {
        self.leb128(items.len() as u64);
        for item in items {
            self.str(item);
        }
    }

    fn leb128(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
}

/// Reads RowBinary output; every read checks the length first.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ClickHouseError> {
        if self.data.len() < n {
            return Err(ClickHouseError::Decode(format!(
                "RowBinary ends {} bytes early",
                n - self.data.len()
            )));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, ClickHouseError> {
        Ok(self.take(1)?[0])
    }

    pub fn u64(&mut self) -> Result<u64, ClickHouseError> {
        let mut buf = [0; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ClickHouseError> {
        let mut buf = [0; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], ClickHouseError> {
        let len = self.leb128()?;
        let len = usize::try_from(len)
            .map_err(|_| ClickHouseError::Decode(format!("a length of {len}")))?;
        self.take(len)
    }

    pub fn string(&mut self) -> Result<String, ClickHouseError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|e| ClickHouseError::Decode(format!("a string that is not UTF-8: {e}")))
    }

    /// Every remaining row of a one-column `String` answer.
    pub fn strings_to_end(&mut self) -> Result<Vec<String>, ClickHouseError> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(self.string()?);
        }
        Ok(out)
    }

    fn leb128(&mut self) -> Result<u64, ClickHouseError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ClickHouseError::Decode(
            "a length longer than 64 bits".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() -> Result<(), ClickHouseError> {
        let mut w = Writer::default();
        w.u8(7);
        w.u64(u64::MAX);
        w.i64(-60);
        w.fixed(&[1, 2, 3, 4]);
        w.str(&"x".repeat(300));
        w.str("");
        let mut r = Reader::new(&w.0);
        assert_eq!(r.u8()?, 7);
        assert_eq!(r.u64()?, u64::MAX);
        assert_eq!(r.u64()? as i64, -60);
        assert_eq!(r.fixed::<4>()?, [1, 2, 3, 4]);
        assert_eq!(r.string()?, "x".repeat(300));
        assert_eq!(r.string()?, "");
        assert!(r.is_empty());
        assert!(r.u8().is_err(), "reading past the end is an error");
        Ok(())
    }

    #[test]
    fn a_length_past_the_data_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0xff, 0xff, 0x03, b'a']);
        assert!(r.bytes().is_err());
        let mut r = Reader::new(&[0xff; 12]);
        assert!(r.bytes().is_err());
    }
}
