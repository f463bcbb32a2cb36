//! The `relaxed` canonicalization of RFC 6376 (section 3.4), for headers and body, over a message as it
//! goes on the wire (CRLF line ends, folded headers), and the `DKIM-Signature` header built around it.

/// The header block and the body of `raw`: split at the first empty line. A message without one is all
/// header.
pub fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&raw[..at + 2], &raw[at + 4..]),
        None => (raw, &[]),
    }
}

/// The header fields of `headers` (each with its folded continuation lines), in order: `(name, value)`,
/// the value as written after the colon, folding included.
pub fn fields(headers: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    while start < headers.len() {
        let end = headers[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(headers.len(), |at| start + at);
        match (headers[start], fields.last_mut()) {
            (b' ' | b'\t', Some(last)) => last.1 = end,
            _ => fields.push((start, end)),
        }
        start = end + 2;
    }
    fields
        .into_iter()
        .filter_map(|(start, end)| {
            let field = &headers[start..end];
            let colon = field.iter().position(|&b| b == b':')?;
            Some((&field[..colon], &field[colon + 1..]))
        })
        .collect()
}

/// One header field, relaxed: `name:value\r\n`, the name in lower case, the value unfolded, every run of
/// whitespace one space, none at either end.
pub fn header(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.extend(name.trim_ascii().iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let (mut started, mut pending_space) = (false, false);
    for &byte in value {
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => pending_space = true,
            _ => {
                if pending_space && started {
                    out.push(b' ');
                }
                (started, pending_space) = (true, false);
                out.push(byte);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The body, relaxed: every run of whitespace within a line one space, none at a line's end, no empty
/// lines at the end, each line ending in CRLF (an empty body stays empty).
pub fn body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut empty_lines = 0;
    let mut lines = body.split(|&b| b == b'\n').peekable();
    // One line at a time, in one buffer for them all.
    let mut canonical = Vec::new();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if lines.peek().is_none() && line.is_empty() {
            // What follows the last CRLF: nothing.
            break;
        }
        canonical.clear();
        let mut pending_space = false;
        for &byte in line {
            if byte == b' ' || byte == b'\t' {
                pending_space = true;
            } else {
                if pending_space {
                    canonical.push(b' ');
                }
                pending_space = false;
                canonical.push(byte);
            }
        }
        if canonical.is_empty() {
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        empty_lines = 0;
        out.extend_from_slice(&canonical);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relaxed(name: &str, value: &str) -> String {
        let mut out = Vec::new();
        header(name.as_bytes(), value.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn headers_are_unfolded_lowered_and_their_whitespace_collapsed() {
        assert_eq!(relaxed("Subject", " Hi"), "subject:Hi\r\n");
        assert_eq!(relaxed("Subject", " a:  b"), "subject:a: b\r\n");
        assert_eq!(
            relaxed("SUBJECT ", " \t Hi   there \r\n\tfolded  \t"),
            "subject:Hi there folded\r\n"
        );
        assert_eq!(relaxed("X-Empty", ""), "x-empty:\r\n");
        assert_eq!(relaxed("X-Empty", "  \r\n "), "x-empty:\r\n");
    }

    #[test]
    fn fields_keep_their_continuation_lines() {
        let raw =
            b"From: a@example.com\r\nSubject: one\r\n two\r\nTo: b@example.com\r\n\r\nbody\r\n";
        let (headers, body) = split(raw);
        assert_eq!(body, b"body\r\n");
        let fields = fields(headers);
        let names: Vec<&[u8]> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [&b"From"[..], b"Subject", b"To"]);
        assert_eq!(fields[1].1, b" one\r\n two");
    }

    #[test]
    fn bodies_lose_trailing_whitespace_and_empty_lines() {
        assert_eq!(
            body(b" a  \tb  \r\n\r\nc\r\n\r\n\r\n"),
            b" a b\r\n\r\nc\r\n"
        );
        assert_eq!(body(b"no final line end"), b"no final line end\r\n");
        assert_eq!(body(b""), b"");
        assert_eq!(body(b"\r\n\r\n"), b"");
        assert_eq!(body(b"  \r\n"), b"");
    }
}
