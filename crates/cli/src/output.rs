//! The CLI's only writers to the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

/// Writes to stdout; a closed pipe (`podnet get ... | head`) is not an error.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// One line to stdout.
pub fn line(text: &str) {
    out(&format!("{text}\n"));
}

/// One line to stderr.
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// An error line to stderr.
pub fn error(text: &str) {
    eprintln!("error: {text}");
}

/// Text to stderr without a newline (progress lines that redraw themselves).
pub fn note_raw(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    let _ = e.flush();
}
