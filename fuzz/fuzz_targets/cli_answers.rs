//! Any bytes as a server's answer to the reading commands' `--server`
//! reader: parsed as it parses them, printed as the commands print them
//! (see `otelite_backend::fuzzing::check_answer`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    otelite_backend::fuzzing::check_answer(data);
});
