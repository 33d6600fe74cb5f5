//! RFC 1035 5.1 master-file syntax, read as NSD reads it: entries (parentheses, comments,
//! quotes), tokens, `\X` and `\DDD` escapes (decimal, giving any byte), `@`, relative names,
//! character-strings.
//!
//! What a record's data means is [`super::rdata`]'s: this module knows only the syntax.

use hickory_proto::rr::Name;

/// One entry of a master file: a line, or several joined by parentheses.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) line: usize,
    /// The entry with comments removed and parenthesised continuation lines joined.
    pub(super) text: String,
    /// Starts with a blank: the owner is the previous entry's (RFC 1035 5.1).
    pub(super) blank_owner: bool,
}

/// Splits master-file text into entries, keeping quoted strings intact.
pub(super) fn entries(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut in_quote = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if depth == 0 && !in_quote {
            start = n;
            current.clear();
        }
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    current.push(c);
                    if let Some(next) = chars.next() {
                        current.push(next);
                    }
                }
                '"' => {
                    in_quote = !in_quote;
                    current.push(c);
                }
                ';' if !in_quote => break,
                '(' if !in_quote => {
                    depth += 1;
                    current.push(' ');
                }
                ')' if !in_quote => {
                    if depth == 0 {
                        return Err((n, "')' without '('".into()));
                    }
                    depth -= 1;
                    current.push(' ');
                }
                _ => current.push(c),
            }
        }
        if in_quote {
            return Err((n, "unterminated quoted string".into()));
        }
        if depth > 0 {
            current.push(' ');
            continue;
        }
        if !current.trim().is_empty() {
            let blank_owner = current.starts_with([' ', '\t']);
            out.push(Entry {
                line: start,
                text: current.trim_end().to_owned(),
                blank_owner,
            });
        }
    }
    if depth > 0 {
        return Err((start, "'(' is never closed".into()));
    }
    Ok(out)
}

/// One token of an entry: a run of non-blank characters, or a quoted string (without its
/// quotes). Escapes are kept as written until the token is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) raw: String,
    pub(super) quoted: bool,
}

/// Splits an entry into tokens: blanks separate them, quotes make one token of what they hold,
/// a backslash keeps the next character in the token whatever it is.
pub(super) fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let quoted = c == '"';
        if quoted {
            chars.next();
        }
        let mut raw = String::new();
        let mut closed = !quoted;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    raw.push(c);
                    match chars.next() {
                        Some(next) => raw.push(next),
                        None => return Err("a backslash at the end of the line".into()),
                    }
                }
                '"' if quoted => {
                    closed = true;
                    break;
                }
                c if !quoted && c.is_whitespace() => break,
                c => raw.push(c),
            }
        }
        if !closed {
            return Err("unterminated quoted string".into());
        }
        out.push(Token { raw, quoted });
    }
    Ok(out)
}

/// The bytes a token stands for: `\DDD` is the byte of decimal value DDD (at most 255), `\X`
/// is X itself, everything else is its UTF-8 encoding.
pub(super) fn unescape(raw: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        match digits {
            Some(d) => {
                let value = d.iter().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
                let byte = u8::try_from(value).map_err(|_| {
                    format!("\\{} is not a byte (\\DDD is decimal, 0 to 255)", value)
                })?;
                out.push(byte);
                i += 4;
            }
            None => {
                // `\X`: the next character as it is (all of its UTF-8 bytes).
                let rest = &raw[i + 1..];
                let c = rest
                    .chars()
                    .next()
                    .ok_or("a backslash at the end of a token")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 1 + c.len_utf8();
            }
        }
    }
    Ok(out)
}

/// A domain name token: `@` is the origin; a name not ending in an unescaped dot is relative
/// to the origin; labels may hold any byte through escapes.
pub(super) fn name(token: &Token, origin: &Name) -> Result<Name, String> {
    let raw = token.raw.as_str();
    if raw == "@" && !token.quoted {
        return Ok(origin.clone());
    }
    if raw == "." {
        return Ok(Name::root());
    }
    // Split on unescaped dots.
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut current = String::new();
    let mut absolute = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '.' => {
                if current.is_empty() {
                    return Err(format!("\"{raw}\" has an empty label"));
                }
                labels.push(unescape(&current)?);
                current.clear();
                absolute = chars.peek().is_none();
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        labels.push(unescape(&current)?);
    }
    if let Some(long) = labels.iter().find(|l| l.len() > 63) {
        return Err(format!(
            "\"{raw}\": a label of {} bytes (at most 63)",
            long.len()
        ));
    }
    let name = Name::from_labels(labels).map_err(|e| format!("\"{raw}\" is not a name: {e}"))?;
    let name = if absolute {
        name
    } else {
        name.append_domain(origin)
            .map_err(|e| format!("\"{raw}\" under {origin} is too long: {e}"))?
    };
    let mut fqdn = name;
    fqdn.set_fqdn(true);
    Ok(fqdn)
}

/// Character-strings (RFC 1035 3.3): each token is one, at most 255 bytes.
pub(super) fn strings(tokens: &[Token]) -> Result<Vec<Vec<u8>>, String> {
    if tokens.is_empty() {
        return Err("no strings".into());
    }
    tokens
        .iter()
        .map(|t| {
            let bytes = unescape(&t.raw)?;
            if bytes.len() > 255 {
                return Err(format!(
                    "a string of {} bytes; a quoted string holds at most 255 bytes (RFC 1035 \
                     3.3): split a long value into several quoted strings, e.g. \"part one\" \
                     \"part two\"",
                    bytes.len()
                ));
            }
            Ok(bytes)
        })
        .collect()
}

/// hickory's messages can span lines; a log line must not.
pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("backhaul.").unwrap()
    }

    fn tok(raw: &str) -> Token {
        Token {
            raw: raw.into(),
            quoted: false,
        }
    }

    #[test]
    fn decimal_escapes_are_bytes() {
        assert_eq!(unescape(r"\065\066\195\133").unwrap(), [65, 66, 195, 133]);
        assert_eq!(unescape(r#"a\.b\\c\""#), Ok(b"a.b\\c\"".to_vec()));
        assert_eq!(unescape(r"\000\255").unwrap(), [0, 255]);
        assert!(unescape(r"\256").is_err());
        let n = name(&tok(r"x\065y"), &origin()).unwrap();
        assert_eq!(n.to_ascii(), "xAy.backhaul.");
        let n = name(&tok(r"a\.b.example."), &origin()).unwrap();
        assert_eq!(n.num_labels(), 2, "an escaped dot is in the label");
        assert_eq!(name(&tok("@"), &origin()).unwrap(), origin());
        assert!(name(&tok(&"a".repeat(64)), &origin()).is_err());
    }

    #[test]
    fn tokens_keep_quotes_and_escapes() {
        let t = tokens(r#"txt TXT "a b" c\ d "\"q\"""#).unwrap();
        let raw: Vec<&str> = t.iter().map(|t| t.raw.as_str()).collect();
        assert_eq!(raw, ["txt", "TXT", "a b", r"c\ d", r#"\"q\""#]);
        assert!(t[2].quoted && !t[3].quoted);
        assert!(tokens(r#"x TXT "open"#).is_err());
    }
}
