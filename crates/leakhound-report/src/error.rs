//! The JSON a command given `--json` prints on stdout when it fails (exit code 2), so a
//! tool reading stdout gets an answer instead of nothing:
//! `{"schema_version":1,"kind":"error","error":"…"}`.

use serde::Serialize;

/// The stable JSON of a failed command (`schema_version` 1).
#[derive(Debug, Clone, Serialize)]
pub struct ErrorJson<'a> {
    /// Version of this document's layout: always 1.
    pub schema_version: u32,
    /// Which document this is: always `"error"` (a failed run of any command).
    pub kind: &'static str,
    /// The message, as printed on stderr after `leakhound: `.
    pub error: &'a str,
}

impl<'a> ErrorJson<'a> {
    /// The document for `error`.
    pub fn new(error: &'a str) -> ErrorJson<'a> {
        ErrorJson {
            schema_version: 1,
            kind: "error",
            error,
        }
    }
}

/// Writes the error document for `error` on one line.
///
/// # Errors
/// Any error writing to `w`.
pub fn write_error_json(error: &str, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, &ErrorJson::new(error))?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_one_line_of_json() {
        let mut out = Vec::new();
        write_error_json("cannot open a.heapsnapshot: \"gone\"", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"schema_version\":1,\"kind\":\"error\",\"error\":\"cannot open a.heapsnapshot: \\\"gone\\\"\"}\n"
        );
    }
}
