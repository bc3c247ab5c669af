//! How a failed `otelite` command is told on stderr: one line, the error
//! and then each cause its message does not already include. Most of
//! otelite's errors put their cause in their own message *and* return it as
//! their source, so printing the whole chain (as anyhow's `Debug` does)
//! said everything twice.

use std::error::Error;

/// `error: cause: …` (see `text::cause_chain`). A server's message may
/// carry terminal controls: they are escaped.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    super::escape::escaped(&crate::text::cause_chain(error)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:4318: {0}")]
    struct Bind(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("starting otelite")]
    struct Context(#[source] Bind);

    fn in_use() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use")
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        assert_eq!(
            one_line(&Bind(in_use())),
            "cannot listen on 127.0.0.1:4318: Address already in use"
        );
    }

    #[test]
    fn a_cause_missing_from_the_message_is_appended_once() {
        assert_eq!(
            one_line(&Context(Bind(in_use()))),
            "starting otelite: cannot listen on 127.0.0.1:4318: Address already in use"
        );
    }
}
