//! The receiver's bounded inflate, then decode (see
//! `otelite_backend::fuzzing::check_gzip`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = otelite_backend::fuzzing::check_gzip(body);
});
