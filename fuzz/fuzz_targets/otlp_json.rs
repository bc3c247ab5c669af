//! OTLP/HTTP JSON body → model → stored encoding, as `POST /v1/traces` does
//! before the write, each accepted span stored as sent (see
//! `otelite_backend::fuzzing::check_decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use otelite_backend::fuzzing;
use otelite_backend::receive::Format;

fuzz_target!(|body: &[u8]| {
    let _ = fuzzing::check_decode(Format::Json, body);
});
