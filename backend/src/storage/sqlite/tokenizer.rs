//! A faster stand-in for FTS5's `unicode61` tokenizer on otelite's own
//! search documents.
//!
//! Every token otelite writes or queries is lowercase ASCII letters and
//! digits, separated by single spaces (see `encode`). On such text
//! `unicode61` yields exactly the space-separated words, but reads it a
//! character at a time through its Unicode tables, on the writer thread that
//! sets ingest's pace (see BENCHMARKS.md). `register` installs, on one connection, a
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
//! in otelite with `unsafe` code (that, and the SSE2 scan of documents in
//! `simd`); each block says what it relies on.
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

#[cfg(test)]
thread_local! {
    /// Texts this thread split on the fast path: FTS5 tokenizes on the
    /// thread that writes or queries, so a test sees its own.
    pub static FAST_TEXTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
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
                #[cfg(test)]
                FAST_TEXTS.with(|texts| texts.set(texts.get() + 1));
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
fn words(text: &[u8]) -> Option<Words<'_>> {
    is_simple(text).then(|| Words {
        text,
        base: 0,
        spaces: space_mask(text, 0),
        start: 0,
    })
}

/// Bytes looked at per step of `Words`.
const LANES: usize = 16;

/// Splits on spaces a chunk of `LANES` bytes at a time: a bitmask of the
/// chunk's spaces (one vector compare once compiled), then one bit per
/// word. Searching for each space (memchr) cost a call per word, and words
/// are short: this runs over every document the writer adds.
struct Words<'a> {
    text: &'a [u8],
    /// Where the chunk of `spaces` starts.
    base: usize,
    /// The chunk's spaces not yet passed, bit `i` for byte `base + i`.
    spaces: u32,
    /// Where the next word starts; past the end once all are out.
    start: usize,
}

impl Iterator for Words<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        loop {
            if self.spaces != 0 {
                let space = self.base + self.spaces.trailing_zeros() as usize;
                self.spaces &= self.spaces - 1;
                let word = (self.start, space);
                self.start = space + 1;
                if word.0 < word.1 {
                    return Some(word);
                }
            } else if self.base + LANES < self.text.len() {
                self.base += LANES;
                self.spaces = space_mask(self.text, self.base);
            } else {
                let word = (self.start, self.text.len());
                self.start = self.text.len() + 1;
                return (word.0 < word.1).then_some(word);
            }
        }
    }
}

/// Bit `i` set where `text[base + i]` is a space, for the `LANES` bytes
/// from `base` (fewer at the end of `text`).
fn space_mask(text: &[u8], base: usize) -> u32 {
    match text.get(base..base + LANES) {
        Some(chunk) => simd::space_mask(chunk),
        None => scalar::space_mask(text.get(base..).unwrap_or_default()),
    }
}

/// Whether every byte is a space, a digit or a lowercase ASCII letter.
fn is_simple(text: &[u8]) -> bool {
    let mut chunks = text.chunks_exact(LANES);
    chunks.all(simd::is_simple) && scalar::is_simple(chunks.remainder())
}

/// One byte at a time: for the end of a text, and what `simd` must equal.
mod scalar {
    pub fn space_mask(bytes: &[u8]) -> u32 {
        (bytes.iter().enumerate()).fold(0, |mask, (i, &b)| mask | (u32::from(b == b' ') << i))
    }

    pub fn is_simple(bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| super::byte_simple(b))
    }
}

/// Sixteen bytes at a time with SSE2, which every x86-64 processor has.
/// The compiler did not vectorise the scalar loops (tried: more
/// instructions than the memchr search they were to replace).
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::LANES;
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128, _mm_sub_epi8, _mm_subs_epu8,
    };

    /// `chunk` must hold `LANES` bytes.
    fn load(chunk: &[u8]) -> __m128i {
        assert_eq!(chunk.len(), LANES);
        // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes just
        // checked and needs no alignment.
        unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) }
    }

    pub fn space_mask(chunk: &[u8]) -> u32 {
        let bytes = load(chunk);
        // SAFETY: SSE2 is part of x86-64; these only compute on registers.
        unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b' ' as i8))) as u32 }
    }

    pub fn is_simple(chunk: &[u8]) -> bool {
        let bytes = load(chunk);
        // SAFETY: SSE2 is part of x86-64; these only compute on registers.
        unsafe {
            // `b - lo`, saturated down by `len - 1`, is zero exactly when
            // `lo <= b < lo + len` (unsigned bytes).
            let within = |lo: u8, len: u8| {
                let offset = _mm_sub_epi8(bytes, _mm_set1_epi8(lo as i8));
                let beyond = _mm_subs_epu8(offset, _mm_set1_epi8((len - 1) as i8));
                _mm_cmpeq_epi8(beyond, _mm_setzero_si128())
            };
            let simple = _mm_or_si128(
                _mm_or_si128(within(b' ', 1), within(b'0', 10)),
                within(b'a', 26),
            );
            _mm_movemask_epi8(simple) == 0xffff
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
use scalar as simd;

fn byte_simple(b: u8) -> bool {
    (b == b' ') | (b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 26)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_on_spaces() {
        let found: Vec<_> = words(b"ab  c0 9").map(|w| w.collect()).unwrap_or_default();
        assert_eq!(found, vec![(0, 2), (4, 6), (7, 8)]);
    }

    /// Every byte value, at every position of a text longer than a chunk,
    /// is classified as the definition says.
    #[test]
    fn every_byte_anywhere_is_classified() {
        for at in 0..2 * LANES + 3 {
            for byte in 0..=255u8 {
                let mut text = b"abc 0z9 ".repeat(5);
                text[at] = byte;
                let simple = byte == b' ' || byte.is_ascii_lowercase() || byte.is_ascii_digit();
                assert_eq!(is_simple(&text), simple, "byte {byte:#x} at {at}");
                assert_eq!(is_simple(&text[..at + 1]), simple);
            }
        }
    }

    /// Splitting a chunk at a time finds the words a plain split finds,
    /// whatever the lengths of words and runs of spaces, across chunks.
    #[test]
    fn words_match_a_plain_split_across_chunks() {
        let mut checked = 0;
        for word_len in [1, 2, 7, 15, 16, 17, 31, 33] {
            for gap in 1..4 {
                for lead in 0..3 {
                    for total in [0, 1, 15, 16, 17, 40, 100] {
                        let mut text = " ".repeat(lead);
                        let mut n = 0u8;
                        while text.len() < total {
                            let letter = char::from(b'a' + n % 26);
                            text.extend(std::iter::repeat_n(letter, word_len));
                            text.extend(std::iter::repeat_n(' ', gap));
                            n += 1;
                        }
                        text.truncate(total);
                        let expected: Vec<(usize, usize)> = text
                            .split(' ')
                            .scan(0, |at, word| {
                                let start = *at;
                                *at += word.len() + 1;
                                Some((start, start + word.len()))
                            })
                            .filter(|(start, end)| start < end)
                            .collect();
                        let found: Option<Vec<_>> = words(text.as_bytes()).map(Iterator::collect);
                        assert_eq!(found, Some(expected), "{text:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 8 * 3 * 3 * 7);
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
