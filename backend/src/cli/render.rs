//! Text output: aligned tables, the trace waterfall and ANSI colour (only
//! when the caller says stdout is a terminal). Pure functions from rows to
//! text, so tests compare strings.

use std::io::{self, Write};

/// How a cell is highlighted when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// Errors and losses.
    Alert,
    /// Unknown or secondary values.
    Faint,
    /// Spans a keep/drop rule dropped: chosen, not lost.
    Policy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
}

impl Cell {
    /// A cell of `text` with its terminal controls escaped (see `escape`).
    pub fn plain(text: impl Into<String>) -> Self {
        Self::toned(text, Tone::Plain)
    }

    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        let text = text.into();
        Self {
            text: super::escape::escaped(&text).into_owned(),
            tone,
        }
    }
}

/// Wraps `text` in the ANSI codes of `tone` when `colour` is on.
pub fn paint(text: &str, tone: Tone, colour: bool) -> String {
    match (colour, tone) {
        (false, _) | (_, Tone::Plain) => text.to_owned(),
        (true, Tone::Alert) => format!("\x1b[31m{text}\x1b[0m"),
        (true, Tone::Faint) => format!("\x1b[2m{text}\x1b[0m"),
        (true, Tone::Policy) => format!("\x1b[36m{text}\x1b[0m"),
    }
}

/// Columns separated by two spaces, each as wide as its widest cell; the
/// last column is not padded so lines carry no trailing blanks.
pub fn table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<Cell>],
    colour: bool,
) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.text.chars().count());
        }
    }
    let header_cells: Vec<Cell> = headers.iter().map(|h| Cell::plain(*h)).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(&paint(&cell.text, cell.tone, colour));
            if i + 1 < row.len() {
                let pad = width - cell.text.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// One span's line in the waterfall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaterfallRow {
    pub depth: usize,
    pub name: String,
    pub service: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub error: bool,
}

/// Characters the whole trace spans in the bar column.
pub const BAR_WIDTH: usize = 40;

/// The span tree: `!` before failed spans, names indented by depth, and a
/// bar placed and scaled within `[trace_start, trace_end]`.
pub fn waterfall(
    out: &mut impl Write,
    rows: &[WaterfallRow],
    trace_start: u64,
    trace_end: u64,
    colour: bool,
) -> io::Result<()> {
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|row| {
            let tone = if row.error { Tone::Alert } else { Tone::Plain };
            vec![
                Cell::toned(if row.error { "!" } else { " " }, tone),
                Cell::toned(format!("{}{}", "  ".repeat(row.depth), row.name), tone),
                Cell::plain(&row.service),
                Cell::plain(super::time::format_duration(
                    row.end_ns.saturating_sub(row.start_ns),
                )),
                Cell::toned(bar(row.start_ns, row.end_ns, trace_start, trace_end), tone),
            ]
        })
        .collect();
    table(
        out,
        &["", "SPAN", "SERVICE", "DURATION", "TIMELINE"],
        &cells,
        colour,
    )
}

/// `BAR_WIDTH` columns: blanks up to the span's start, then at least one `█`.
pub fn bar(start: u64, end: u64, trace_start: u64, trace_end: u64) -> String {
    let total = trace_end.saturating_sub(trace_start).max(1) as u128;
    let column = |t: u64| -> usize {
        let offset = t.clamp(trace_start, trace_end.max(trace_start)) - trace_start;
        (offset as u128 * BAR_WIDTH as u128 / total) as usize
    };
    let first = column(start).min(BAR_WIDTH - 1);
    let last = column(end).max(first + 1);
    format!("{}{}", " ".repeat(first), "█".repeat(last - first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        write(&mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn cells_show_terminal_controls_escaped() {
        let name = "checkout\u{1b}]52;c;aGk=\u{7}\u{1b}[2K\r";
        let shown = text(|out| table(out, &["SPAN"], &[vec![Cell::plain(name)]], false));
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\r'),
            "{shown:?}"
        );
        assert!(
            shown.contains("checkout\\x1b]52;c;aGk=\\x07\\x1b[2K\\x0d"),
            "{shown:?}"
        );
    }

    #[test]
    fn tables_align_columns_without_trailing_blanks() {
        let rows = vec![
            vec![Cell::plain("a"), Cell::plain("1"), Cell::plain("x")],
            vec![Cell::plain("longer"), Cell::plain("22"), Cell::plain("")],
        ];
        let shown = text(|out| table(out, &["NAME", "N", "NOTE"], &rows, false));
        assert_eq!(shown, "NAME    N   NOTE\na       1   x\nlonger  22\n");
    }

    #[test]
    fn colour_wraps_cells_but_not_their_padding() {
        let rows = vec![vec![Cell::toned("bad", Tone::Alert), Cell::plain("1")]];
        let shown = text(|out| table(out, &["NAME", "N"], &rows, true));
        assert_eq!(shown, "NAME  N\n\x1b[31mbad\x1b[0m   1\n");
        let plain = text(|out| table(out, &["NAME", "N"], &rows, false));
        assert!(!plain.contains('\x1b'));
    }

    #[test]
    fn bars_are_placed_and_scaled_within_the_trace() {
        assert_eq!(bar(0, 100, 0, 100), "█".repeat(BAR_WIDTH));
        assert_eq!(
            bar(50, 100, 0, 100),
            format!("{}{}", " ".repeat(20), "█".repeat(20))
        );
        assert_eq!(bar(0, 25, 0, 100), "█".repeat(10));
        // A very short span still shows, also at the very end.
        assert_eq!(bar(10, 10, 0, 1_000), "█");
        assert_eq!(bar(1_000, 1_000, 0, 1_000), format!("{}█", " ".repeat(39)));
        // A zero-length trace does not divide by zero.
        assert_eq!(bar(5, 5, 5, 5), "█");
    }

    #[test]
    fn the_waterfall_indents_children_and_marks_errors() {
        let row = |depth, name: &str, start, end, error| WaterfallRow {
            depth,
            name: name.into(),
            service: "shop".into(),
            start_ns: start,
            end_ns: end,
            error,
        };
        let rows = [
            row(0, "GET /", 0, 4_000_000, false),
            row(1, "db", 2_000_000, 3_000_000, true),
        ];
        let shown = text(|out| waterfall(out, &rows, 0, 4_000_000, false));
        let expected = format!(
            "   SPAN   SERVICE  DURATION  TIMELINE\n   GET /  shop     4.00ms    {}\n!    db   shop     1.00ms    {}{}\n",
            "█".repeat(40),
            " ".repeat(20),
            "█".repeat(10)
        );
        assert_eq!(shown, expected);
    }
}
