//! What the reading commands print comes from spans any sender wrote, from
//! a server, or from a file: control characters in it (ESC starting an
//! OSC 52 clipboard write or a CSI that erases lines, C1 controls, DEL) and
//! bidirectional overrides that reorder what is shown are printed escaped,
//! as `\x1b` or `\u{202e}`, the way `git` and `ls` show such names.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character and bidi control escaped.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_for_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !unsafe_for_terminal(c) {
            out.push(c);
        } else if u32::from(c) < 0x80 {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

/// C0 (with ESC, tab and newline), DEL, C1, and the characters that
/// override or isolate the text's direction.
fn unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_escaped() {
        let osc52 = "a\u{1b}]52;c;aGk=\u{7}b";
        assert_eq!(escaped(osc52), "a\\x1b]52;c;aGk=\\x07b");
        assert_eq!(escaped("x\u{1b}[2K\rhidden"), "x\\x1b[2K\\x0dhidden");
        assert_eq!(escaped("del\u{7f} c1\u{9b}"), "del\\x7f c1\\u{9b}");
        assert_eq!(escaped("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escaped("line\nbreak\ttab"), "line\\x0abreak\\x09tab");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        assert!(matches!(
            escaped("GET /users/{id} — ünïcode ✓"),
            Cow::Borrowed(_)
        ));
    }
}
