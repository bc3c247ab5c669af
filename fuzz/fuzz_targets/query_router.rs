//! The query listener's router as served, fed any method, request target
//! and header fields through `tower::ServiceExt::oneshot`, against a small
//! SQLite store (see `otelite_backend::fuzzing::QueryFixture`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use otelite_backend::fuzzing::QueryFixture;
use std::sync::OnceLock;

struct Fixture {
    query: QueryFixture,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        Fixture {
            query: QueryFixture::new(dir.path()),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    fixture().query.check(data);
});
