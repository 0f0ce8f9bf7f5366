//! The part of ZPL (ZeroMQ Property Language, ZMQ RFC 4) that certificate files use:
//! one `name` or `name = value` per line, nesting by 4 spaces of indentation, `#`
//! comments, values bare or in double or single quotes.
//!
//! Reading only, and total: every line that is not ZPL is an error naming its number.

/// One property: its path from the root (`["curve", "public-key"]`) and its value
/// (empty for a bare name).
pub(crate) type Property = (Vec<String>, String);

/// Why a line is not ZPL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ZplError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub what: String,
}

/// Characters a ZPL name may hold (RFC 4).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "$-_@.&+/".contains(c)
}

/// Every property of `text`, in file order.
pub(crate) fn parse(text: &str) -> Result<Vec<Property>, ZplError> {
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |what: &str| ZplError {
            line,
            what: what.to_string(),
        };
        let body = raw.trim_start_matches(' ');
        let indent = raw.len() - body.len();
        let body = body.trim_end();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if body.starts_with('\t') {
            return Err(err("indented with a tab (ZPL indents by 4 spaces)"));
        }
        if !indent.is_multiple_of(4) {
            return Err(err("indentation is not a multiple of 4 spaces"));
        }
        let level = indent / 4;
        if level > path.len() {
            return Err(err("indented deeper than its parent"));
        }
        path.truncate(level);
        let end = body.find(|c: char| !name_char(c)).unwrap_or(body.len());
        let (name, rest) = body.split_at(end);
        if name.is_empty() {
            return Err(err("does not start with a name"));
        }
        let rest = rest.trim_start();
        let value = if let Some(v) = rest.strip_prefix('=') {
            let v = v.trim_start();
            let (value, after) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let close = v[1..]
                        .find(q)
                        .ok_or_else(|| err("quoted value without its closing quote"))?;
                    (&v[1..1 + close], v[2 + close..].trim_start())
                }
                _ => {
                    let end = v.find([' ', '#']).unwrap_or(v.len());
                    (&v[..end], v[end..].trim_start())
                }
            };
            if !(after.is_empty() || after.starts_with('#')) {
                return Err(err("text after the value"));
            }
            value.to_string()
        } else if rest.is_empty() || rest.starts_with('#') {
            String::new()
        } else {
            return Err(err("a name must be followed by '=' or nothing"));
        };
        path.push(name.to_string());
        out.push((path.clone(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &[&str], v: &str) -> Property {
        (path.iter().map(|s| s.to_string()).collect(), v.to_string())
    }

    #[test]
    fn nesting_quotes_and_comments() {
        let text = "# c\n\nmetadata\n    name = \"a # b\"  # comment\n    x = 'q'\n    bare = v1\ncurve\n    public-key = \"k\"\n";
        assert_eq!(
            parse(text).unwrap(),
            vec![
                p(&["metadata"], ""),
                p(&["metadata", "name"], "a # b"),
                p(&["metadata", "x"], "q"),
                p(&["metadata", "bare"], "v1"),
                p(&["curve"], ""),
                p(&["curve", "public-key"], "k"),
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("curve\n  public-key = \"k\"\n", 2),
            ("curve\n        public-key = \"k\"\n", 2),
            ("curve\n    public-key = \"k\n", 2),
            ("a\nb c\n", 2),
            ("= x\n", 1),
            ("a = \"x\" y\n", 1),
            ("a\n\tb = 1\n", 2),
        ];
        for (text, line) in cases {
            assert_eq!(parse(text).unwrap_err().line, line, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[ a-z=\"'#\\n\\t]{0,80}") {
            let _ = parse(&text);
        }
    }
}
