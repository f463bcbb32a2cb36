//! Query-string decoding for the list endpoint (`application/x-www-form-urlencoded`).

/// The decoded `(name, value)` pairs of a query string, in order (see [`crate::urls::query_pairs`]).
pub fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    crate::urls::query_pairs(query.unwrap_or(""))
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
