//! An error and its causes on one line.

use std::error::Error;

/// `error: cause: …`, leaving out a cause whose text the line already
/// holds: most errors put their cause in their own message *and* return it
/// as their source, and printing both said everything twice.
pub fn cause_chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}
