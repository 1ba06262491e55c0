//! What `config.toml` and `agent.toml` share: reading the file within a size bound,
//! and refusals that name the file, the line and the key without echoing a value.
//!
//! Both files are parsed into `Spanned` raw structs; a [`Source`] turns a span (or a
//! `toml` error) into a [`FileError`] such as
//! `config.toml:14: channel[1].scheme: unknown scheme`, which is the difference between
//! a config error a person fixes in seconds and one they hunt for.

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

/// Largest config file read (1 MiB), checked before parsing: a real config is a few
/// kilobytes, and parsing time and memory grow with the file.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// A config file that cannot be used, located as precisely as possible.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {key}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FileError {
    /// The file's name as given (a path, or a label for built-in text).
    pub file: String,
    /// 1-based; `None` when the problem is the whole file.
    pub line: Option<usize>,
    /// Dotted key path (`server.listen`, `channel[1].secrets[0]`), `-` when unknown.
    pub key: String,
    /// What is wrong and, where it helps, what is expected instead.
    pub message: String,
}

impl FileError {
    /// An error about the whole file rather than one line of it.
    pub fn whole_file(file: &str, key: &str, message: impl Into<String>) -> FileError {
        FileError {
            file: file.to_string(),
            line: None,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// A config file's text and its permission bits (`None` where there are none).
pub struct FileText {
    pub text: String,
    pub mode: Option<u32>,
}

/// Reads a config file, refusing one over [`MAX_CONFIG_FILE_BYTES`] before parsing.
pub fn read_file(path: &Path) -> Result<FileText, FileError> {
    let name = path.display().to_string();
    let unreadable =
        |e: std::io::Error| FileError::whole_file(&name, "-", format!("cannot read the file: {e}"));
    let too_large = |size: String| {
        FileError::whole_file(
            &name,
            "-",
            format!(
                "the file is {size} bytes; a config file may be at most \
                 {MAX_CONFIG_FILE_BYTES} bytes (1 MiB)"
            ),
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // The mode of the file read, not of whatever the path names a moment later.
    let meta = file.metadata().map_err(unreadable)?;
    if meta.len() > MAX_CONFIG_FILE_BYTES {
        return Err(too_large(meta.len().to_string()));
    }
    // The length above may be stale or meaningless (a pipe): bound the read itself too.
    let mut text = String::new();
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(too_large(format!("more than {MAX_CONFIG_FILE_BYTES}")));
    }
    Ok(FileText {
        text,
        mode: mode_of(&meta),
    })
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> Option<u32> {
    None
}

/// Config text being validated: where it came from, and how `env:NAME` is looked up.
pub struct Source<'a> {
    pub text: &'a str,
    /// Names the file in errors.
    pub file: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Source<'_> {
    /// An error about the value at `span`.
    pub fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> FileError {
        FileError {
            file: self.file.to_string(),
            line: Some(line_at(self.text, span.start)),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// A `toml` syntax or shape error, located by its span and never echoing a value.
    pub fn toml_error(&self, e: &toml::de::Error) -> FileError {
        let start = e.span().map(|s| s.start);
        FileError {
            file: self.file.to_string(),
            line: start.map(|s| line_at(self.text, s)),
            key: start.map_or_else(|| "-".into(), |s| key_at(self.text, s)),
            message: redact_values(e.message().trim()),
        }
    }

    /// Resolves `env:NAME` references; other strings are literal. A missing or empty
    /// variable is an error rather than an empty secret that would let anything through.
    pub fn resolve(&self, value: &Spanned<String>, key: &str) -> Result<String, FileError> {
        let Some(name) = value.get_ref().strip_prefix("env:") else {
            return Ok(value.get_ref().clone());
        };
        if name.trim().is_empty() {
            return Err(self.err(
                value.span(),
                key,
                "\"env:\" needs a variable name, like \"env:HOOKRELAY_SECRET\"",
            ));
        }
        (self.env)(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            self.err(
                value.span(),
                key,
                format!("environment variable {name} is not set (or empty)"),
            )
        })
    }

    /// A positive integer.
    pub fn positive(&self, v: &Spanned<i64>, key: &str) -> Result<u64, FileError> {
        match u64::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.err(v.span(), key, "must be a positive integer")),
        }
    }

    /// A count that may be 0.
    pub fn non_negative(&self, v: &Spanned<i64>, key: &str) -> Result<u64, FileError> {
        u64::try_from(*v.get_ref())
            .map_err(|_| self.err(v.span(), key, "must be a non-negative integer"))
    }
}

/// One entry of an array of tables (`[[channel]]`, `[[route]]`): its errors are keyed
/// `channel[2].name`, and a missing key is reported at the entry itself.
pub struct Entry<'a> {
    pub src: &'a Source<'a>,
    /// The table name (`channel`).
    pub array: &'static str,
    pub index: usize,
    /// The entry's span in the text.
    pub span: Range<usize>,
}

impl Entry<'_> {
    /// The key path of `key` in this entry (`channel[2].name`).
    pub fn key(&self, key: &str) -> String {
        format!("{}[{}].{key}", self.array, self.index)
    }

    /// An error about this entry's value at `span`.
    pub fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> FileError {
        self.src.err(span, &self.key(key), message)
    }

    /// An error about this entry as a whole (a key it lacks, a combination of keys).
    pub fn err_here(&self, key: &str, message: impl Into<String>) -> FileError {
        self.err(self.span.clone(), key, message)
    }
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|s| s.bytes().filter(|&b| b == b'\n').count() + 1)
        .unwrap_or(1)
}

/// The dotted key path (`server.listen`, `channel[1].secrets`) of the assignment or
/// table header on the line of byte `offset`, found from the text itself: the toml
/// error keeps its key path private, and "line 7" alone is not enough to act on.
/// Entries of an array of tables are numbered per table name (`route[2]`).
pub fn key_at(text: &str, offset: usize) -> String {
    let mut arrays: Vec<(String, usize)> = Vec::new();
    let mut table = String::new();
    let mut key = None;
    for line in text.lines().take(line_at(text, offset)) {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            let name = name.trim();
            table = format!("{name}[{}]", next_index(&mut arrays, name));
            key = None;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = name.trim().to_string();
            key = None;
        } else if !line.starts_with('#') {
            if let Some((k, _)) = line.split_once('=') {
                key = Some(k.trim().trim_matches('"').to_string());
            }
        }
    }
    match key {
        None if table.is_empty() => "-".into(),
        None => table,
        Some(k) if table.is_empty() => k,
        Some(k) => format!("{table}.{k}"),
    }
}

/// The index the next `[[name]]` table gets (0 for the first).
fn next_index(arrays: &mut Vec<(String, usize)>, name: &str) -> usize {
    match arrays.iter_mut().find(|(n, _)| n == name) {
        Some((_, count)) => {
            *count += 1;
            *count - 1
        }
        None => {
            arrays.push((name.to_string(), 1));
            0
        }
    }
}

/// Removes the quoted value from serde's `invalid type: string "..."` messages: the
/// value may be a secret put where a list was expected (guarantee 7).
pub fn redact_values(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(QUOTED) {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let after = &rest[i + QUOTED.len()..];
        rest = match after.find("\", expected").or_else(|| after.rfind('"')) {
            Some(end) => &after[end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source<'_> {
        Source {
            text,
            file: "f.toml",
            env: &|n| (n == "SET").then(|| "value".to_string()),
        }
    }

    #[test]
    fn lines_are_one_based_and_clamped() {
        let text = "a = 1\nb = 2\n\nc = 3";
        assert_eq!(line_at(text, 0), 1);
        assert_eq!(line_at(text, 5), 1); // the newline ends line 1
        assert_eq!(line_at(text, 6), 2);
        assert_eq!(line_at(text, text.find('c').expect("c")), 4);
        assert_eq!(line_at(text, text.len()), 4);
        assert_eq!(line_at(text, 10_000), 1, "out of range");
        assert_eq!(line_at("é\nx", 1), 1, "not a char boundary");
    }

    #[test]
    fn key_paths_follow_tables_and_arrays_of_tables() {
        let text = "top = 1\n[server]\nlisten = \"x\"\n# a = 1\n[server.tls]\n\"cert\" = \"c\"\n\
                    [[channel]]\nname = \"a\"\n[[route]]\nchannel = \"r\"\n[[channel]]\n\
                    name = \"b\"\n[[channel]]\n";
        let key_on = |line: usize| {
            let offset: usize = text
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum();
            key_at(text, offset)
        };
        assert_eq!(key_on(1), "top");
        assert_eq!(key_on(2), "server");
        assert_eq!(key_on(3), "server.listen");
        assert_eq!(key_on(4), "server.listen", "comments are skipped");
        assert_eq!(key_on(6), "server.tls.cert");
        assert_eq!(key_on(8), "channel[0].name");
        assert_eq!(key_on(10), "route[0].channel");
        assert_eq!(key_on(12), "channel[1].name");
        assert_eq!(key_on(13), "channel[2]");
        assert_eq!(key_at("", 0), "-");
    }

    #[test]
    fn redaction_drops_quoted_values_only() {
        assert_eq!(
            redact_values("invalid type: string \"a\\\"b\", expected a sequence"),
            "invalid type: a string, expected a sequence"
        );
        assert_eq!(
            redact_values("invalid type: string \"s1\", expected x; string \"s2\""),
            "invalid type: a string, expected x; a string"
        );
        assert_eq!(
            redact_values("unknown field `lisen`"),
            "unknown field `lisen`"
        );
        assert_eq!(redact_values("string \"unterminated"), "a string");
    }

    #[test]
    fn toml_errors_are_located_and_redacted() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Raw {
            list: Vec<String>,
        }
        let text = "\n\nlist = \"hunter2\"\n";
        let e = toml::from_str::<Raw>(text).expect_err("a string is not a list");
        let e = source(text).toml_error(&e);
        assert_eq!((e.line, e.key.as_str()), (Some(3), "list"), "{e}");
        assert!(e.to_string().starts_with("f.toml:3: list: "), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn env_references_resolve_or_name_the_problem() {
        let src = source("");
        let v = |s: &str| Spanned::new(0..0, s.to_string());
        assert_eq!(src.resolve(&v("plain"), "k").expect("literal"), "plain");
        assert_eq!(src.resolve(&v("env:SET"), "k").expect("set"), "value");
        let e = src.resolve(&v("env:UNSET"), "k").expect_err("unset");
        assert_eq!(
            e.message,
            "environment variable UNSET is not set (or empty)"
        );
        for empty in ["env:", "env: "] {
            let e = src.resolve(&v(empty), "k").expect_err("no name");
            assert!(e.message.contains("needs a variable name"), "{e}");
            assert!(!e.to_string().contains("  "), "{e}");
        }
    }

    #[test]
    fn errors_without_a_line_name_the_file() {
        let e = FileError::whole_file("f.toml", "-", "cannot read the file: gone");
        assert_eq!(e.to_string(), "f.toml: -: cannot read the file: gone");
        assert_eq!(
            source("a\nb").err(2..3, "k", "m").to_string(),
            "f.toml:2: k: m"
        );
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("big.toml");
        let size = MAX_CONFIG_FILE_BYTES as usize + 1;
        std::fs::write(&path, "#".repeat(size)).expect("write");
        let e = read_file(&path).err().expect("refused");
        assert_eq!(e.line, None);
        assert!(e.message.contains(&format!("{size} bytes")), "{e}");
        std::fs::write(&path, "#".repeat(size - 1)).expect("write");
        assert_eq!(read_file(&path).expect("at the limit").text.len(), size - 1);
    }
}
