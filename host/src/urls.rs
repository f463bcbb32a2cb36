//! The host's URL helpers, in one place so that every caller agrees: which backend or protocol a
//! URL's scheme selects, how a URL is shown without its secrets, and how percent-escapes are read.
//!
//! The configuration holds several URLs with credentials in them (the database, the SMTP relay, the
//! SMS gateway, the execution instances), and each ends up in logs, error messages and the admin API.
//! One redaction means one set of rules for what counts as a secret.

use std::borrow::Cow;

use url::{Url, form_urlencoded};

/// What [`redact`] writes in place of a secret.
pub const REDACTED: &str = "***";

/// Query parameters whose value is a secret (compared after percent-decoding, ignoring ASCII case):
/// libpq's and sqlx's `password` and `sslpassword`, and the usual spellings of passwords, tokens and
/// keys in the gateway and relay URLs an operator may write.
pub const SECRET_PARAMETERS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "sslpassword",
    "secret",
    "token",
    "access_token",
    "auth_token",
    "api_key",
    "apikey",
];

/// The schemes the host acts on, each with the form it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sqlite:…` (`sqlite::memory:`, `sqlite://data/x.db?mode=rwc`, `sqlite:x.db`).
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
    /// `http://…`.
    Http,
    /// `https://…`.
    Https,
}

impl Scheme {
    /// The scheme `url` selects, compared case-insensitively as RFC 3986 says schemes are. A URL
    /// with a network scheme but no `//` authority (`postgres:db`) selects nothing: no driver reads
    /// it the way the operator meant.
    pub fn of(url: &str) -> Option<Scheme> {
        let (scheme, rest) = split_scheme(url)?;
        let has_authority = rest.starts_with("//");
        let lower = scheme.to_ascii_lowercase();
        match lower.as_str() {
            "sqlite" => Some(Scheme::Sqlite),
            "postgres" | "postgresql" if has_authority => Some(Scheme::Postgres),
            "http" if has_authority => Some(Scheme::Http),
            "https" if has_authority => Some(Scheme::Https),
            _ => None,
        }
    }

    /// Whether this is a database the host can store its data in.
    pub fn is_database(self) -> bool {
        matches!(self, Scheme::Sqlite | Scheme::Postgres)
    }

    /// Whether this is `http://` or `https://`.
    pub fn is_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }
}

/// `url` split at the colon that ends its scheme: `("sqlite", "//data/x.db")`. `None` when the text
/// before the first `:` is not a scheme (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`).
pub fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `url` with its scheme in lower case (`SQLite::memory:` → `sqlite::memory:`), for the drivers that
/// compare the scheme as written (sqlx's SQLite options would read `SQLite:x.db` as a file name)
/// rather than case-insensitively, as [`Scheme::of`] does.
pub fn lowercase_scheme(url: &str) -> Cow<'_, str> {
    match split_scheme(url) {
        Some((scheme, rest)) if scheme.bytes().any(|b| b.is_ascii_uppercase()) => {
            Cow::Owned(format!("{}:{rest}", scheme.to_ascii_lowercase()))
        }
        _ => Cow::Borrowed(url),
    }
}

/// `url` with its secrets replaced by `***`: the password of the user info
/// (`postgres://mc:***@db/mc`) and the value of every secret-looking query parameter
/// (`?user=mc&password=***`, see [`SECRET_PARAMETERS`]). Everything else is kept as written, so
/// the result still says which server, database or file is meant.
///
/// A URL the `url` crate parses is cut where that parser (and so sqlx and reqwest) cuts it: the user
/// info ends at the last `@` of the authority. Text it refuses, or with a `#` (no URL the host
/// uses has a fragment, so one is more likely a password character), is read the cautious way:
/// everything up to the last `@` is user info, so that a password with an unescaped `/`, `?`, `#`
/// or `@` is still hidden.
pub fn redact(text: &str) -> String {
    let parsed = Url::parse(text).ok().filter(|u| u.fragment().is_none());
    let (redacted, hid_password) = redact_text(text, parsed.is_some());
    match parsed {
        // The parser found a password where the text shows no `://` authority (`http:u:pw@host`,
        // which special schemes accept): its serialization is the safe answer.
        Some(mut url) if url.password().is_some() && !hid_password => {
            let _ = url.set_password(Some(REDACTED));
            let query = url.query().map(redact_query);
            url.set_query(query.as_deref());
            url.into()
        }
        _ => redacted,
    }
}

/// The string surgery of [`redact`], and whether it replaced a user-info password. `well_formed`
/// says whether the authority ends where URL parsers end it (at the first `/`, `?` or `#`) or,
/// cautiously, at the end of the text.
fn redact_text(text: &str, well_formed: bool) -> (String, bool) {
    let authority_start = match text.find("://") {
        Some(i) => i + 3,
        None if well_formed => text.len(),
        None => split_scheme(text).map_or(0, |(scheme, _)| scheme.len() + 1),
    };
    let search_end = if well_formed {
        text[authority_start..]
            .find(['/', '?', '#'])
            .map_or(text.len(), |i| authority_start + i)
    } else {
        text.len()
    };
    let mut out = String::with_capacity(text.len());
    let mut hid_password = false;
    let rest = match text[authority_start..search_end].rfind('@') {
        Some(at) => {
            let at = authority_start + at;
            let userinfo = &text[authority_start..at];
            out.push_str(&text[..authority_start]);
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                    hid_password = true;
                }
                None => out.push_str(userinfo),
            }
            &text[at..]
        }
        None => text,
    };
    match rest.split_once('?') {
        Some((before, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((query, fragment)) => (query, Some(fragment)),
                None => (query, None),
            };
            out.push_str(before);
            out.push('?');
            out.push_str(&redact_query(query));
            if let Some(fragment) = fragment {
                out.push('#');
                out.push_str(fragment);
            }
        }
        None => out.push_str(rest),
    }
    (out, hid_password)
}

/// `a=1&password=x` → `a=1&password=***`: pairs kept as written, secret values replaced.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_parameter(key) => format!("{key}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether the (still escaped) query parameter name `key` names a secret.
fn is_secret_parameter(key: &str) -> bool {
    let decoded: String = form_urlencoded::parse(key.as_bytes())
        .map(|(name, _)| name.into_owned())
        .collect();
    SECRET_PARAMETERS
        .iter()
        .any(|secret| decoded.eq_ignore_ascii_case(secret))
}

/// `%XX` escapes decoded (`me%40x.org` → `me@x.org`), as in the user info or path of a URL: `+` stays
/// a `+`, a `%` not followed by two hex digits stays as written, and bytes that are not UTF-8 become
/// U+FFFD.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| Some((hex_value(hex[0])? << 4) | hex_value(hex[1])?));
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The query string of `pairs`, `application/x-www-form-urlencoded` (the inverse of [`query_pairs`]).
pub fn encode_query(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The decoded `(name, value)` pairs of an `application/x-www-form-urlencoded` query string, in
/// order: `+` is a space, empty pairs are skipped, a pair without `=` has an empty value.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://mc:s3cret@db.example:5432/mc?sslmode=require"),
            "postgres://mc:***@db.example:5432/mc?sslmode=require"
        );
        assert_eq!(
            redact("postgres://db/mc?user=mc&password=s3cret"),
            "postgres://db/mc?user=mc&password=***"
        );
        assert_eq!(redact("postgres://mc@db/mc"), "postgres://mc@db/mc");
        assert_eq!(
            redact("sqlite://data/message-center.db?mode=rwc"),
            "sqlite://data/message-center.db?mode=rwc"
        );
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact("postgres://mc:pa/ss@word@db/mc"),
            "postgres://mc:***@db/mc"
        );
    }

    #[test]
    fn redact_cuts_the_user_info_at_the_authority() {
        // An `@` in the query is not part of the user info.
        assert_eq!(
            redact("postgres://u:p@h:5432/db?x=y@z"),
            "postgres://u:***@h:5432/db?x=y@z"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("sqlite://data/x.db?mode=rwc"),
            "sqlite://data/x.db?mode=rwc"
        );
        // An unescaped `@` inside the password: the last one of the authority ends the user info.
        assert_eq!(
            redact("postgres://mc:p@ss@db/mc"),
            "postgres://mc:***@db/mc"
        );
    }

    #[test]
    fn redact_hides_passwords_of_urls_the_parser_refuses() {
        assert_eq!(
            redact("postgres://mc:s3cret@db.example:notaport/mc"),
            "postgres://mc:***@db.example:notaport/mc"
        );
        // `?` and `#` would otherwise end the authority before the password does.
        assert_eq!(
            redact("postgres://mc:pa?ss@db/mc"),
            "postgres://mc:***@db/mc"
        );
        assert_eq!(
            redact("postgres://mc:12#ss@db/mc"),
            "postgres://mc:***@db/mc"
        );
        assert_eq!(redact("ftp://u:pw@h/"), "ftp://u:***@h/");
        assert_eq!(
            redact("mysql://root:pw@localhost/mc"),
            "mysql://root:***@localhost/mc"
        );
    }

    #[test]
    fn redact_hides_secret_query_parameters_whatever_their_spelling() {
        assert_eq!(
            redact("postgres://db/mc?PASSWORD=s3cret&sslmode=require"),
            "postgres://db/mc?PASSWORD=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://db/mc?sslpassword=k&pass%77ord=s3cret"),
            "postgres://db/mc?sslpassword=***&pass%77ord=***"
        );
        assert_eq!(
            redact("https://sms.example/send?api_key=k&token=t&to=33"),
            "https://sms.example/send?api_key=***&token=***&to=33"
        );
        // Both places at once, and a parameter without a value is kept.
        assert_eq!(
            redact("postgres://mc:a@db/mc?password=b&flag"),
            "postgres://mc:***@db/mc?password=***&flag"
        );
        // Without an authority.
        assert_eq!(
            redact("sqlite:data/x.db?password=s3cret"),
            "sqlite:data/x.db?password=***"
        );
    }

    #[test]
    fn redact_keeps_the_text_as_written() {
        // No trailing `/` added, no case folding: only the secret changes.
        assert_eq!(
            redact("http://u:p@exec-1.internal:8080"),
            "http://u:***@exec-1.internal:8080"
        );
        for unchanged in ["HTTP://Exec-1/", "exec-2:80", "", "not a url"] {
            assert_eq!(redact(unchanged), unchanged);
        }
    }

    #[test]
    fn redact_falls_back_on_the_parser_for_authorities_without_slashes() {
        // Special schemes accept `http:user:password@host`; the parser sees a password there.
        let shown = redact("http:u:pw@host/x?token=t");
        assert!(!shown.contains("pw"), "{shown}");
        assert!(!shown.contains("=t"), "{shown}");
        assert_eq!(shown, "http://u:***@host/x?token=***");
    }

    #[test]
    fn schemes_are_classified_case_insensitively() {
        for (url, scheme) in [
            ("sqlite::memory:", Some(Scheme::Sqlite)),
            ("SQLite://data/x.db?mode=rwc", Some(Scheme::Sqlite)),
            ("sqlite:x.db", Some(Scheme::Sqlite)),
            ("postgres://h/db", Some(Scheme::Postgres)),
            ("PostgreSQL://h/db", Some(Scheme::Postgres)),
            ("http://h", Some(Scheme::Http)),
            ("HTTPS://h/x", Some(Scheme::Https)),
            ("postgres:db", None),
            ("http:h", None),
            ("mysql://x/y", None),
            ("exec-2:80", None),
            ("1sqlite:x", None),
            ("data/x.db", None),
            ("", None),
        ] {
            assert_eq!(Scheme::of(url), scheme, "{url}");
        }
        assert!(Scheme::Sqlite.is_database() && Scheme::Postgres.is_database());
        assert!(!Scheme::Http.is_database() && !Scheme::Https.is_database());
        assert!(Scheme::Http.is_http() && Scheme::Https.is_http());
        assert!(!Scheme::Sqlite.is_http());
    }

    #[test]
    fn split_scheme_checks_the_scheme_syntax() {
        assert_eq!(
            split_scheme("sqlite::memory:"),
            Some(("sqlite", ":memory:"))
        );
        assert_eq!(split_scheme("svn+ssh://h"), Some(("svn+ssh", "//h")));
        assert_eq!(split_scheme("C:\\x"), Some(("C", "\\x")));
        assert_eq!(split_scheme("-x:y"), None);
        assert_eq!(split_scheme(":y"), None);
        assert_eq!(split_scheme("no colon"), None);
    }

    #[test]
    fn lowercase_scheme_touches_the_scheme_only() {
        assert_eq!(lowercase_scheme("SQLite:Data/X.db"), "sqlite:Data/X.db");
        assert_eq!(
            lowercase_scheme("POSTGRES://U:P@H/DB"),
            "postgres://U:P@H/DB"
        );
        assert!(matches!(
            lowercase_scheme("sqlite::memory:"),
            Cow::Borrowed(_)
        ));
        assert_eq!(lowercase_scheme("not a URL"), "not a URL");
    }

    #[test]
    fn percent_decode_reads_escapes_only() {
        for (encoded, decoded) in [
            ("me%40x.org", "me@x.org"),
            ("p%3Ass", "p:ss"),
            ("%41%62c", "Abc"),
            ("caf%C3%A9", "café"),
            // `+` is not a space outside form encoding.
            ("a+b", "a+b"),
            // Malformed escapes stay as written.
            ("100%", "100%"),
            ("%4", "%4"),
            ("%zz%41", "%zzA"),
            ("%%41", "%A"),
            ("%FF", "\u{FFFD}"),
            ("", ""),
        ] {
            assert_eq!(percent_decode(encoded), decoded, "{encoded}");
        }
    }

    #[test]
    fn query_pairs_decode_form_encoding() {
        assert_eq!(
            query_pairs("status=pending&type=ORDER%20CONFIRMED&x=a+b&empty=&flag&&n%61me=%zz"),
            [
                ("status", "pending"),
                ("type", "ORDER CONFIRMED"),
                ("x", "a b"),
                ("empty", ""),
                ("flag", ""),
                ("name", "%zz"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(query_pairs("").is_empty());
    }
}
