//! The OTLP router as served, fed any method, path, content type, content
//! encoding and body through `tower::ServiceExt::oneshot`, with a store on
//! a temporary SQLite file (see `otelite_backend::fuzzing::HttpFixture`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use otelite_backend::fuzzing::HttpFixture;
use std::sync::OnceLock;

struct Fixture {
    http: HttpFixture,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        Fixture {
            http: HttpFixture::new(dir.path()),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    fixture().http.check(data);
});
