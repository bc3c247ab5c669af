//! Percent-encoding of one URL path segment or query value.

/// `text` percent-encoded except RFC 3986's unreserved characters, so it
/// is one URL path segment or one query value whatever it holds.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
