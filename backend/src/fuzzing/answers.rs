//! Target `cli_answers`: any bytes as a server's answer to the reading
//! commands' `--server` reader, parsed as the reader parses them and, when
//! they parse, printed as the commands print them. A hostile server may
//! make the command fail, never panic.

use crate::cli::traces::write_tree;
use crate::rates::RatesReport;
use crate::storage::remote::{TracePageBody, read_answer};
use http::StatusCode;
use otelite_model::TraceId;

const URL: &str = "http://fuzz.invalid/api/otelite/traces/0af7651916cd43dd8448eb211c80319c";
const STATUSES: [StatusCode; 5] = [
    StatusCode::OK,
    StatusCode::NOT_FOUND,
    StatusCode::UNAUTHORIZED,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::SERVICE_UNAVAILABLE,
];

/// The first byte picks the answer's status and whether it is a trace page
/// or a rates report; the rest is its body. Returns whether it parsed.
pub fn check_answer(data: &[u8]) -> bool {
    let Some((choice, body)) = data.split_first() else {
        return false;
    };
    let status = STATUSES[usize::from(choice & 0x7f) % STATUSES.len()];
    let base = "http://fuzz.invalid";
    if choice & 0x80 == 0 {
        let answer = read_answer::<TracePageBody>(base, URL.into(), false, status, body);
        let Ok(Some(body)) = answer else {
            return false;
        };
        let Ok(page) = body.into_page(URL) else {
            return false;
        };
        let mut out = Vec::new();
        write_tree(&mut out, &TraceId([7; 16]), &page.spans, true).expect("printing to memory");
        serde_json::to_vec(&page.spans).expect("spans that parsed print as JSON");
        true
    } else {
        let answer = read_answer::<RatesReport>(base, URL.into(), true, status, body);
        matches!(answer, Ok(Some(_)))
    }
}
