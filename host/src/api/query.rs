//! Query-string decoding for the list endpoint (`application/x-www-form-urlencoded`).

/// The decoded `(name, value)` pairs of a query string, in order.
pub fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// A page size: 1 to `max`.
pub fn page_limit(value: &str, max: u64) -> Result<u64, crate::error::ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            crate::error::ApiError::bad_request(
                "limit",
                format!("`limit` must be 1 to {max}, not `{value}`"),
            )
        })
}

/// An RFC 3339 time given as query parameter `field`.
pub fn time(
    field: &str,
    value: &str,
) -> Result<chrono::DateTime<chrono::Utc>, crate::error::ApiError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .map_err(|_| {
            crate::error::ApiError::bad_request(
                field,
                format!(
                    "`{field}` must be an RFC 3339 time such as 2026-11-22T10:00:00Z, not `{value}`"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        assert_eq!(
            pairs(Some(
                "status=pending&type=ORDER%20CONFIRMED&x=a+b&empty=&flag"
            )),
            vec![
                ("status".to_owned(), "pending".to_owned()),
                ("type".to_owned(), "ORDER CONFIRMED".to_owned()),
                ("x".to_owned(), "a b".to_owned()),
                ("empty".to_owned(), String::new()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            pairs(Some("a=%zz%4")),
            vec![("a".to_owned(), "%zz%4".to_owned())]
        );
        assert_eq!(
            pairs(Some("é=%C3%A9")),
            vec![("é".to_owned(), "é".to_owned())]
        );
        assert!(pairs(None).is_empty());
    }
}
