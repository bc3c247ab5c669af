//! A faster stand-in for FTS5's `unicode61` tokenizer on otelite's own
//! search documents.
//!
//! Every token otelite writes or queries is lowercase ASCII letters and
//! digits, separated by single spaces (see `encode`). On such text
//! `unicode61` yields exactly the space-separated words, but reads it a
//! character at a time through its Unicode tables: that was a fifth of the
//! writer thread's instructions. `register` installs, on one connection, a
//! tokenizer under the name `unicode61` that splits such text on spaces
//! and hands any other text to the built-in `unicode61`, so its tokens are
//! always the built-in's. The file therefore stays an ordinary SQLite file:
//! a connection without this tokenizer (the `sqlite3` shell, any other
//! SQLite tool) reads and writes the same index, only more slowly.
//!
//! FTS5 only looks a tokenizer up by name when the table names one, hence
//! `tokenize = 'unicode61'` in the schema since version 5.
//!
//! The FTS5 tokenizer interface is C only, so this module is the one place
//! in otelite with `unsafe` code; each block says what it relies on.
#![allow(unsafe_code)]

use rusqlite::Connection;
use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

const NAME: &std::ffi::CStr = c"unicode61";

/// Why the tokenizer could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("FTS5 is not available on this connection (code {0})")]
    NoFts5(c_int),
    #[error("the built-in unicode61 tokenizer was not found (code {0})")]
    NoBuiltin(c_int),
    #[error("FTS5 refused the tokenizer (code {0})")]
    Refused(c_int),
}

/// The built-in tokenizer ours falls back to.
struct Builtin {
    user_data: *mut c_void,
    methods: ffi::fts5_tokenizer_v2,
}

/// One tokenizer instance: the built-in's instance beside it.
struct Instance {
    inner: *mut ffi::Fts5Tokenizer,
    methods: ffi::fts5_tokenizer_v2,
}

/// Installs the tokenizer on `conn`; tables opened afterwards use it.
pub fn register(conn: &Connection) -> Result<(), RegisterError> {
    // SAFETY: `handle` is this open connection's, used on this thread
    // only while `conn` is borrowed; `fts5_api_ptr` is the pointer type
    // FTS5 documents for `SELECT fts5(?)`.
    unsafe {
        let db = conn.handle();
        let api = fts5_api(db)?;
        let mut user_data = ptr::null_mut();
        let mut methods: *mut ffi::fts5_tokenizer_v2 = ptr::null_mut();
        let find = (*api).xFindTokenizer_v2.ok_or(RegisterError::NoFts5(0))?;
        let rc = find(api, NAME.as_ptr(), &mut user_data, &mut methods);
        if rc != ffi::SQLITE_OK || methods.is_null() {
            return Err(RegisterError::NoBuiltin(rc));
        }
        let builtin = Box::into_raw(Box::new(Builtin {
            user_data,
            methods: *methods,
        }));
        let mut ours = ffi::fts5_tokenizer_v2 {
            iVersion: 2,
            xCreate: Some(create),
            xDelete: Some(delete),
            xTokenize: Some(tokenize),
        };
        let create_tokenizer = (*api).xCreateTokenizer_v2.ok_or(RegisterError::NoFts5(0))?;
        // FTS5 copies `ours`; it owns `builtin` from here and frees it
        // with `destroy` when the connection closes.
        let rc = create_tokenizer(api, NAME.as_ptr(), builtin.cast(), &mut ours, Some(destroy));
        if rc != ffi::SQLITE_OK {
            drop(Box::from_raw(builtin));
            return Err(RegisterError::Refused(rc));
        }
    }
    Ok(())
}

/// The connection's `fts5_api`, as FTS5 hands it out.
unsafe fn fts5_api(db: *mut ffi::sqlite3) -> Result<*mut ffi::fts5_api, RegisterError> {
    let mut api: *mut ffi::fts5_api = ptr::null_mut();
    let mut stmt = ptr::null_mut();
    // SAFETY: `db` is open; the statement is finalized on every path and
    // `api` outlives it.
    unsafe {
        let rc = ffi::sqlite3_prepare_v2(
            db,
            c"SELECT fts5(?1)".as_ptr(),
            -1,
            &mut stmt,
            ptr::null_mut(),
        );
        if rc != ffi::SQLITE_OK {
            return Err(RegisterError::NoFts5(rc));
        }
        ffi::sqlite3_bind_pointer(
            stmt,
            1,
            (&mut api as *mut *mut ffi::fts5_api).cast(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        ffi::sqlite3_step(stmt);
        let rc = ffi::sqlite3_finalize(stmt);
        if rc != ffi::SQLITE_OK || api.is_null() || (*api).iVersion < 3 {
            return Err(RegisterError::NoFts5(rc));
        }
    }
    Ok(api)
}

unsafe extern "C" fn destroy(user_data: *mut c_void) {
    // SAFETY: `user_data` is the `Builtin` boxed in `register`.
    drop(unsafe { Box::from_raw(user_data.cast::<Builtin>()) });
}

unsafe extern "C" fn create(
    user_data: *mut c_void,
    args: *mut *const c_char,
    n_args: c_int,
    out: *mut *mut ffi::Fts5Tokenizer,
) -> c_int {
    // SAFETY: `user_data` is the `Builtin` given at registration, alive
    // until `destroy`; the built-in gets the table's arguments unchanged.
    unsafe {
        let builtin = &*user_data.cast::<Builtin>();
        let Some(create_inner) = builtin.methods.xCreate else {
            return ffi::SQLITE_ERROR;
        };
        let mut inner = ptr::null_mut();
        let rc = create_inner(builtin.user_data, args, n_args, &mut inner);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let instance = Box::new(Instance {
            inner,
            methods: builtin.methods,
        });
        *out = Box::into_raw(instance).cast();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn delete(tokenizer: *mut ffi::Fts5Tokenizer) {
    // SAFETY: `tokenizer` is an `Instance` from `create`, deleted once.
    unsafe {
        let instance = Box::from_raw(tokenizer.cast::<Instance>());
        if let Some(delete_inner) = instance.methods.xDelete {
            delete_inner(instance.inner);
        }
    }
}

type TokenCallback =
    unsafe extern "C" fn(*mut c_void, c_int, *const c_char, c_int, c_int, c_int) -> c_int;

#[allow(clippy::too_many_arguments)] // FTS5's signature
unsafe extern "C" fn tokenize(
    tokenizer: *mut ffi::Fts5Tokenizer,
    context: *mut c_void,
    flags: c_int,
    text: *const c_char,
    n_text: c_int,
    locale: *const c_char,
    n_locale: c_int,
    on_token: Option<TokenCallback>,
) -> c_int {
    // SAFETY: FTS5 passes an `Instance` from `create` and `n_text` bytes
    // at `text`.
    unsafe {
        let instance = &*tokenizer.cast::<Instance>();
        let bytes: &[u8] = if n_text <= 0 || text.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(text.cast(), n_text as usize)
        };
        match (on_token, words(bytes)) {
            (Some(on_token), Some(words)) => {
                for (start, end) in words {
                    let rc = on_token(
                        context,
                        0,
                        text.add(start),
                        (end - start) as c_int,
                        start as c_int,
                        end as c_int,
                    );
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                }
                ffi::SQLITE_OK
            }
            _ => match instance.methods.xTokenize {
                Some(inner) => inner(
                    instance.inner,
                    context,
                    flags,
                    text,
                    n_text,
                    locale,
                    n_locale,
                    on_token,
                ),
                None => ffi::SQLITE_ERROR,
            },
        }
    }
}

/// The words of `text` (start and end offsets) if it holds only lowercase
/// ASCII letters, digits and spaces, where `unicode61` finds the same
/// words; `None` for any other text.
fn words(text: &[u8]) -> Option<impl Iterator<Item = (usize, usize)> + '_> {
    is_simple(text).then(|| {
        let mut start = 0;
        memchr::memchr_iter(b' ', text)
            .chain(std::iter::once(text.len()))
            .filter_map(move |space| {
                let word = (start, space);
                start = space + 1;
                (word.0 < word.1).then_some(word)
            })
    })
}

/// Whether every byte is a space, a digit or a lowercase ASCII letter.
/// Eight bytes at a time: this runs over every document the writer adds.
fn is_simple(text: &[u8]) -> bool {
    let mut chunks = text.chunks_exact(8);
    let mut simple = true;
    for chunk in &mut chunks {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(chunk);
        simple &= lanes_simple(u64::from_le_bytes(lanes));
    }
    simple && chunks.remainder().iter().all(|&b| byte_simple(b))
}

fn byte_simple(b: u8) -> bool {
    b == b' ' || b.is_ascii_lowercase() || b.is_ascii_digit()
}

const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// `byte_simple` for the eight bytes of `word` at once (SWAR).
fn lanes_simple(word: u64) -> bool {
    // For bytes below 0x80, the high bit of each lane of
    // `(word | HIGH) - c * ONES` says whether that byte is >= c, with no
    // borrow between lanes.
    let at_least = |c: u8| ((word | HIGH) - u64::from(c) * ONES) & HIGH;
    let between = |lo: u8, hi: u8| at_least(lo) & !at_least(hi + 1);
    let simple = between(b' ', b' ') | between(b'0', b'9') | between(b'a', b'z');
    word & HIGH == 0 && simple == HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_on_spaces() {
        let found: Vec<_> = words(b"ab  c0 9").map(|w| w.collect()).unwrap_or_default();
        assert_eq!(found, vec![(0, 2), (4, 6), (7, 8)]);
    }

    #[test]
    fn every_byte_in_every_lane_is_classified_as_one_at_a_time() {
        for lane in 0..8 {
            for byte in 0..=255u8 {
                let mut text = *b"abc 0z9 ";
                text[lane] = byte;
                assert_eq!(
                    is_simple(&text),
                    byte_simple(byte),
                    "byte {byte:#x} in lane {lane}"
                );
                assert_eq!(is_simple(&text[..lane + 1]), byte_simple(byte));
            }
        }
    }

    /// The terms FTS5 indexed for `documents`, each with its document count.
    fn indexed_terms(
        conn: &Connection,
        documents: &[&str],
    ) -> rusqlite::Result<Vec<(String, i64)>> {
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'unicode61');
             CREATE VIRTUAL TABLE terms USING fts5vocab(t, 'row');",
        )?;
        for document in documents {
            conn.execute("INSERT INTO t (x) VALUES (?1)", [document])?;
        }
        let mut terms = conn.prepare("SELECT term, doc FROM terms ORDER BY term")?;
        let rows = terms.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    #[test]
    fn indexes_exactly_what_the_builtin_indexes() -> Result<(), Box<dyn std::error::Error>> {
        let documents = [
            "a0123456789abcdef p00ff00ff00ff00ff6869",
            "  k1  k2 k1 ",
            "",
            "Hello, World! hello-world",
            "ÉCOLE école naïve 東京 x_y",
            "tab\tseparated\nlines",
        ];
        let ours = Connection::open_in_memory()?;
        register(&ours)?;
        let builtin = Connection::open_in_memory()?;
        let expected = indexed_terms(&builtin, &documents)?;
        assert!(
            expected.iter().any(|(term, _)| term == "ecole"),
            "{expected:?}"
        );
        assert_eq!(indexed_terms(&ours, &documents)?, expected);
        // Queries are tokenized the same way too.
        let found: i64 = ours.query_row(
            "SELECT count(*) FROM t WHERE t MATCH 'k1 OR ecole OR a0123456789abcdef'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(found, 3);
        Ok(())
    }

    #[test]
    fn other_text_goes_to_the_builtin() {
        assert!(words(b"Ab").is_none());
        assert!(words(b"a-b").is_none());
        assert!(words("é".as_bytes()).is_none());
    }
}
