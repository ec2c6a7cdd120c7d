//! AT line framing and response parsing.
//!
//! The framer turns an arbitrarily fragmented byte stream into lines; the parsers turn lines
//! into typed responses. Both are lenient in what they accept (CRLF, LF, `\r\r\n`, `+X:v`,
//! `+X: v`, `+X=v`, lowercase final results) because phones differ.

/// Splits a byte stream from the phone into lines, bounded in memory.
#[derive(Debug)]
pub(crate) struct LineFramer {
    /// Bytes of the line being assembled (never longer than `max_line`).
    buf: Vec<u8>,
    /// Longest line kept; longer lines are discarded up to the next line end.
    max_line: usize,
    /// Set while dropping the rest of an oversized line.
    discarding: bool,
}

/// One item produced by [`LineFramer::feed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framed {
    /// A complete, trimmed, non-empty line.
    Line(String),
    /// A line grew beyond the limit; it is dropped up to the next line end.
    Overflow,
}

impl LineFramer {
    /// Creates a framer that keeps at most `max_line` bytes per line.
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_line: max_line.max(1),
            discarding: false,
        }
    }

    /// Consumes `bytes`, returning every line completed by them. Partial data is kept.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Framed> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if self.discarding {
                    self.discarding = false;
                } else if !self.buf.is_empty() {
                    let line = String::from_utf8_lossy(&self.buf).trim().to_owned();
                    self.buf.clear();
                    if !line.is_empty() {
                        out.push(Framed::Line(line));
                    }
                }
            } else if self.discarding {
                // Dropping the tail of an oversized line.
            } else if self.buf.len() >= self.max_line {
                self.buf.clear();
                self.discarding = true;
                out.push(Framed::Overflow);
            } else {
                self.buf.push(b);
            }
        }
        out
    }
}

/// A line received from the Audio Gateway, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response<'a> {
    /// `OK`: the command in flight succeeded.
    Ok,
    /// `ERROR`: the command in flight failed without detail.
    Error,
    /// `+CME ERROR: <n>`.
    CmeError(u16),
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `DELAYED`, `BLACKLISTED`.
    Failure(&'a str),
    /// `RING`.
    Ring,
    /// `+NAME: value`, `+NAME:value` or `+NAME=value`; `name` is upper-cased without `+`.
    Result {
        /// Result code name, upper-cased, without the leading `+`.
        name: String,
        /// Everything after the separator, trimmed.
        value: &'a str,
    },
    /// Anything else.
    Other(&'a str),
}

/// Classifies one trimmed line.
pub(crate) fn parse_response(line: &str) -> Response<'_> {
    const FAILURES: [&str; 5] = ["NO CARRIER", "BUSY", "NO ANSWER", "DELAYED", "BLACKLISTED"];
    if line.eq_ignore_ascii_case("OK") {
        return Response::Ok;
    }
    if line.eq_ignore_ascii_case("ERROR") {
        return Response::Error;
    }
    if line.eq_ignore_ascii_case("RING") {
        return Response::Ring;
    }
    if let Some(f) = FAILURES.iter().find(|f| line.eq_ignore_ascii_case(f)) {
        return Response::Failure(f);
    }
    let Some(rest) = line.strip_prefix('+') else {
        return Response::Other(line);
    };
    let (name, value) = match rest.find([':', '=']) {
        Some(i) => (&rest[..i], rest[i + 1..].trim()),
        None => (rest, ""),
    };
    let name = name.trim().to_ascii_uppercase();
    if name == "CME ERROR" {
        return match value.parse() {
            Ok(n) => Response::CmeError(n),
            Err(_) => Response::Error,
        };
    }
    Response::Result { name, value }
}

/// Splits a result value on commas outside double quotes; fields are trimmed and unquoted.
pub(crate) fn fields(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

/// Parses a small unsigned number field, tolerating surrounding spaces and parentheses.
pub(crate) fn number<T: std::str::FromStr>(field: &str) -> Option<T> {
    field
        .trim()
        .trim_matches(|c| c == '(' || c == ')')
        .trim()
        .parse()
        .ok()
}

/// One entry of an `AT+CIND=?` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndicatorSpec {
    /// Name as the phone sends it, lower-cased.
    pub(crate) name: String,
    /// Smallest value in the advertised range.
    pub(crate) min: u8,
    /// Largest value in the advertised range.
    pub(crate) max: u8,
}

/// Parses the value of `+CIND: ("service",(0,1)),("call",(0-1)),...`.
///
/// Every quoted string or bare word starts a new indicator, numbers that follow belong to its
/// range. This accepts "(0,1)", "(0-1)", missing quotes, missing or unbalanced parentheses.
pub(crate) fn parse_cind_test(value: &str) -> Vec<IndicatorSpec> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == '"' {
            chars.next();
            let mut name = String::new();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                name.push(c);
            }
            out.push((name.trim().to_ascii_lowercase(), Vec::new()));
        } else if c.is_ascii_alphabetic() {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push((name.to_ascii_lowercase(), Vec::new()));
        } else if c.is_ascii_digit() {
            let mut n = 0u32;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = (n * 10 + d).min(255);
                chars.next();
            }
            if let Some((_, range)) = out.last_mut() {
                range.push(u8::try_from(n).unwrap_or(u8::MAX));
            }
        } else {
            chars.next();
        }
    }
    out.into_iter()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, range)| IndicatorSpec {
            name,
            min: range.iter().copied().min().unwrap_or(0),
            max: range.iter().copied().max().unwrap_or(1),
        })
        .collect()
}

/// Parses a list such as `(0,1,1x,2,2x,3,4)` or `0,1,2` into its items.
pub(crate) fn parse_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c == '(' || c == ')' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches('"').to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(framed: Vec<Framed>) -> Vec<String> {
        framed
            .into_iter()
            .map(|f| match f {
                Framed::Line(l) => l,
                Framed::Overflow => "<overflow>".into(),
            })
            .collect()
    }

    #[test]
    fn framer_handles_all_line_endings() {
        let mut f = LineFramer::new(64);
        assert_eq!(lines(f.feed(b"\r\nOK\r\n")), ["OK"]);
        assert_eq!(lines(f.feed(b"A\nB\r\r\nC\r")), ["A", "B", "C"]);
        assert!(f.feed(b"\r\n\r\n\n").is_empty());
    }

    #[test]
    fn framer_keeps_partial_lines() {
        let mut f = LineFramer::new(64);
        assert!(f.feed(b"\r\n+CIE").is_empty());
        assert!(f.feed(b"V: 2,").is_empty());
        assert_eq!(lines(f.feed(b"1\r\nRI")), ["+CIEV: 2,1"]);
        assert_eq!(lines(f.feed(b"NG\r\n")), ["RING"]);
    }

    #[test]
    fn framer_bounds_lines() {
        let mut f = LineFramer::new(8);
        assert_eq!(lines(f.feed(b"123456789012")), ["<overflow>"]);
        assert!(f.feed(&[b'x'; 10_000]).is_empty());
        assert_eq!(lines(f.feed(b"\r\nOK\r\n")), ["OK"]);
        assert_eq!(lines(f.feed(b"12345678\r\n")), ["12345678"]);
    }

    #[test]
    fn parses_final_results() {
        assert_eq!(parse_response("ok"), Response::Ok);
        assert_eq!(parse_response("ERROR"), Response::Error);
        assert_eq!(parse_response("+CME ERROR: 30"), Response::CmeError(30));
        assert_eq!(parse_response("+CME ERROR:3"), Response::CmeError(3));
        assert_eq!(
            parse_response("no carrier"),
            Response::Failure("NO CARRIER")
        );
        assert_eq!(parse_response("Ring"), Response::Ring);
        assert_eq!(parse_response("hello"), Response::Other("hello"));
    }

    #[test]
    fn parses_all_separators() {
        for line in ["+VGS:7", "+VGS: 7", "+VGS=7", "+vgs : 7"] {
            assert_eq!(
                parse_response(line),
                Response::Result {
                    name: "VGS".into(),
                    value: "7"
                }
            );
        }
        assert_eq!(
            parse_response("+XAPL=iPhone,6"),
            Response::Result {
                name: "XAPL".into(),
                value: "iPhone,6"
            }
        );
    }

    #[test]
    fn splits_fields_with_quotes() {
        assert_eq!(
            fields(r#""+1 555, 0100",145,,,"Doe, Jane""#),
            ["+1 555, 0100", "145", "", "", "Doe, Jane"]
        );
        assert_eq!(number::<u8>(" 3 "), Some(3));
        assert_eq!(number::<u8>("(1)"), Some(1));
    }

    #[test]
    fn parses_cind_in_all_notations() {
        let specs = parse_cind_test(
            r#"("service",(0,1)),("call",(0-1)),("callsetup",(0-3)),("battchg",(0,1,2,3,4,5))"#,
        );
        let got: Vec<_> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.min, s.max))
            .collect();
        assert_eq!(
            got,
            [
                ("service", 0, 1),
                ("call", 0, 1),
                ("callsetup", 0, 3),
                ("battchg", 0, 5)
            ]
        );
    }

    #[test]
    fn parses_malformed_cind() {
        let specs =
            parse_cind_test(r#"(service,(0-1)),("Call",(0,1),("callsetup",0-3),"signal",(0-5)),"#);
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["service", "call", "callsetup", "signal"]);
        assert_eq!(specs[3].max, 5);
    }

    #[test]
    fn parses_lists() {
        assert_eq!(
            parse_list("(0,1,1x,2,2x,3,4)"),
            ["0", "1", "1x", "2", "2x", "3", "4"]
        );
        assert_eq!(parse_list("0, 1,2"), ["0", "1", "2"]);
    }
}
