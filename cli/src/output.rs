//! Reading FILE, writing to standard output, and the document report that
//! `check` prints and `preview` and `push` reuse.

use std::io::{Read, Write};
use std::path::Path;

use fleetops::schedule::{validate_schedules, ConfigError, ScheduleError, Schedules};

use crate::Failure;

/// A schedules document and the name to call it by in messages.
pub struct Document {
    pub label: String,
    pub text: String,
}

/// Reads FILE (`-`: standard input). Unreadable is a usage error.
pub fn read_document(path: &Path) -> Result<Document, Failure> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
        return Ok(Document {
            label: "<stdin>".into(),
            text,
        });
    }
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {label}: {e}")))?;
    Ok(Document { label, text })
}

/// Writes `text` to standard output; a closed pipe (`| head`) is not an error.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::problem(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// What the library's parser says about a whole document.
pub enum Verdict {
    /// Every schedule is valid.
    Valid(Schedules),
    /// The document is read, some schedules are not valid: every error.
    Invalid {
        schedules: Schedules,
        errors: Vec<ScheduleError>,
    },
    /// The document cannot be used at all.
    Broken(ConfigError),
}

pub fn judge(document: &Document) -> Verdict {
    let errors = match validate_schedules(&document.text) {
        Ok(errors) => errors,
        Err(error) => return Verdict::Broken(error),
    };
    match fleetops::schedule::parse_schedules(&document.text) {
        Err(error) => Verdict::Broken(error),
        Ok(schedules) if errors.is_empty() => Verdict::Valid(schedules),
        Ok(schedules) => Verdict::Invalid { schedules, errors },
    }
}

/// The report `fleetops check` prints: one line per error, prefixed with the
/// document's name, then a summary line.
pub fn report(document: &Document, verdict: &Verdict) -> String {
    let label = &document.label;
    let mut out = String::new();
    match verdict {
        Verdict::Valid(schedules) => {
            let names: Vec<&str> = schedules.by_name.keys().map(String::as_str).collect();
            match names.len() {
                0 => out.push_str(&format!(
                    "{label}: valid, but it defines no schedule: every tagged instance would be skipped\n"
                )),
                1 => out.push_str(&format!("{label}: 1 schedule, valid ({})\n", names[0])),
                n => out.push_str(&format!(
                    "{label}: {n} schedules, all valid ({})\n",
                    names.join(", ")
                )),
            }
        }
        Verdict::Invalid { schedules, errors } => {
            for error in errors {
                out.push_str(&format!("{label}: {error}\n"));
            }
            let invalid: Vec<&str> = schedules.errors().map(|e| e.schedule.as_str()).collect();
            out.push_str(&format!(
                "{label}: {} in {} of {} ({}); the scheduler skips the instances of an invalid schedule\n",
                plural(errors.len(), "error", "errors"),
                invalid.len(),
                plural(schedules.by_name.len(), "schedule", "schedules"),
                invalid.join(", "),
            ));
        }
        Verdict::Broken(error) => {
            out.push_str(&format!("{label}: {error}\n"));
            if let ConfigError::NotJson {
                line,
                column,
                source,
            } = error
            {
                let message = source.to_string();
                out.push_str(&excerpt(&document.text, *line, *column, &message));
            }
            out.push_str(&format!(
                "{label}: the whole document is refused; while it is in force, the scheduler changes nothing\n"
            ));
        }
    }
    out
}

/// The line `line` (1-based) of `text` with a caret under `column`, or,
/// for a trailing comma, under the comma itself (serde_json reports the
/// bracket after it, often on the next line).
fn excerpt(text: &str, line: usize, column: usize, message: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(index) = line.checked_sub(1).filter(|i| *i < lines.len()) else {
        return String::new();
    };
    let (index, column, note) = if message.contains("trailing comma") {
        match trailing_comma(&lines, index, column) {
            Some((i, c)) => (i, c, " remove this comma: nothing may follow it here"),
            None => (index, column, ""),
        }
    } else {
        (index, column, "")
    };
    let content = lines[index];
    let number = (index + 1).to_string();
    let pad = " ".repeat(number.len());
    // serde_json's column counts characters up to and including the one it
    // stopped at; tabs are kept so the caret lines up under them.
    let before: String = content
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("  {number} | {content}\n  {pad} | {before}^{note}\n")
}

/// Where (line index, 1-based column) the comma before `line`/`column` is,
/// looking back over whitespace only.
fn trailing_comma(lines: &[&str], line: usize, column: usize) -> Option<(usize, usize)> {
    let mut i = line;
    let mut chars: Vec<char> = lines[i].chars().take(column.saturating_sub(1)).collect();
    loop {
        while let Some(c) = chars.pop() {
            if c == ',' {
                return Some((i, chars.len() + 1));
            }
            if !c.is_whitespace() {
                return None;
            }
        }
        i = i.checked_sub(1)?;
        chars = lines[i].chars().collect();
    }
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
