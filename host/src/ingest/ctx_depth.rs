//! How deeply a `ctx` nests, measured on its JSON text without recursion.
//!
//! The intake keeps `ctx` as the text the client sent (`serde_json::value::RawValue`, whose reader skips
//! nested values with a loop and no depth bound), but everything that reads it back parses it with
//! `serde_json`, which gives up past 128 levels: an event accepted with a deeper `ctx` could never be
//! read again (the claim of `rtEventsProcessing` failed on it, and with it every event claimed in the same
//! run). So the intake refuses a `ctx` deeper than [`MAX_CTX_DEPTH`], and the store sets apart a stored
//! one deeper than [`READABLE_CTX_DEPTH`] (see `store::event_read`). The walk is a loop over the bytes, so
//! a hostile body of any depth costs no stack.

/// Deepest `ctx` the intake accepts: objects and arrays inside one another, the `ctx` object itself
/// counting as 1 (`{"a":{"b":1}}` is 2). Real personalisation data nests a handful of levels.
pub const MAX_CTX_DEPTH: usize = 32;

/// Deepest stored `ctx` that is still handed to workflows. Above the intake's limit, so that events
/// accepted before it existed are processed as before, and below `serde_json`'s 128 with room for the
/// envelope a plugin's answer wraps `ctx` in (`{"events":[{"ctx":…}]}`).
pub const READABLE_CTX_DEPTH: usize = 100;

/// The nesting depth of the JSON text `text` (0 for a scalar), or `limit + 1` as soon as it goes past
/// `limit`: the scan stops there, so its cost is bounded by where the excess starts, not by the text.
/// `text` is taken to be JSON; on anything else the answer is merely some number.
pub fn nesting_depth(text: &str, limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return limit + 1;
                }
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
    }

    #[test]
    fn objects_and_arrays_count_and_brackets_in_strings_do_not() {
        assert_eq!(nesting_depth("{}", 64), 1);
        assert_eq!(nesting_depth("1", 64), 0);
        assert_eq!(nesting_depth(r#"{"a":{"b":1},"c":[1,[2]]}"#, 64), 3);
        assert_eq!(nesting_depth(r#"{"a":"{{{{[[[[","b":"\"{{["}"#, 64), 1);
        assert_eq!(nesting_depth(r#"{"a\\":{"b":1}}"#, 64), 2);
        assert_eq!(nesting_depth(&nested(32), 64), 32);
    }

    #[test]
    fn the_scan_stops_past_the_limit_whatever_the_depth() {
        assert_eq!(nesting_depth(&nested(33), 32), 33);
        assert_eq!(nesting_depth(&nested(32), 32), 32);
        // 8,000 levels (48 KB), and a million, cost no stack.
        assert_eq!(
            nesting_depth(&nested(8_000), MAX_CTX_DEPTH),
            MAX_CTX_DEPTH + 1
        );
        let deep = "[".repeat(1_000_000);
        assert_eq!(nesting_depth(&deep, usize::MAX - 1), 1_000_000);
    }

    #[test]
    fn the_limits_leave_serde_json_room() {
        const { assert!(MAX_CTX_DEPTH < READABLE_CTX_DEPTH && READABLE_CTX_DEPTH + 3 < 128) };
        let text = format!(
            "{{\"events\":[{{\"ctx\":{}}}]}}",
            nested(READABLE_CTX_DEPTH)
        );
        serde_json::from_str::<serde_json::Value>(&text).expect("readable with its envelope");
    }
}
