//! Text from the relay, made safe for a log line: an `Error` frame's code and message
//! come from the other end of the connection, so a broken or hostile relay must not be
//! able to write megabyte lines into the agent's log, or forge log lines with newlines.

use std::fmt::Write;

/// The most bytes of a relay's message kept in a log line or an error.
pub const MAX_RELAY_MESSAGE_BYTES: usize = 512;
/// The most bytes of a relay's error code kept (codes are short words).
pub const MAX_RELAY_CODE_BYTES: usize = 64;

/// `text` on one line and at most about `max_bytes` long: control characters (line
/// breaks included) are escaped, and longer text is cut at a character boundary and
/// marked with its full length: `first bytes… (1048576 bytes)`.
pub fn clip(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes) + 24);
    for c in text.chars() {
        let before = out.len();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > max_bytes {
            out.truncate(before);
            let _ = write!(out, "… ({} bytes)", text.len());
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept() {
        assert_eq!(clip("offset 7 is compacted", 512), "offset 7 is compacted");
        assert_eq!(clip("", 8), "");
        assert_eq!(clip("exactly8", 8), "exactly8");
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary_with_its_length() {
        let text = "✓".repeat(1000); // 3000 bytes
        let clipped = clip(&text, 512);
        assert_eq!(clipped, format!("{}… (3000 bytes)", "✓".repeat(170)));
        assert_eq!(clip("abcdefghij", 4), "abcd… (10 bytes)");
    }

    #[test]
    fn control_characters_cannot_break_the_line() {
        assert_eq!(clip("a\nb\r\tc\u{1b}[31m", 64), "a\\nb\\r\\tc\\u{1b}[31m");
        // An escape is never cut in half.
        assert_eq!(clip("ab\ncd", 3), "ab… (5 bytes)");
    }
}
