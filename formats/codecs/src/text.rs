//! Text taken from a file, made safe to print: control characters (ANSI escape sequences,
//! newlines, bidi overrides' C1 cousins) are escaped as `\u{..}` and long values are cut with
//! an ellipsis, so a hostile name can neither drive the terminal nor become a 4 MB line.

/// Longest value shown before it is cut (in characters).
pub(crate) const SHOWN_MAX: usize = 200;

/// `s` with control characters escaped, cut to [`SHOWN_MAX`] characters plus `…`.
pub fn shown(s: &str) -> String {
    shown_max(s, SHOWN_MAX)
}

/// [`shown`] with another length cap.
pub fn shown_max(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 16));
    for (i, c) in s.chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_cuts() {
        assert_eq!(shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
        let long = "x".repeat(5000);
        let s = shown(&long);
        assert_eq!(s.chars().count(), SHOWN_MAX + 1);
        assert!(s.ends_with('…'));
        assert_eq!(shown("plain.name"), "plain.name");
    }
}
