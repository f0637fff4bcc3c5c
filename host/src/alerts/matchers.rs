//! Label matchers in the Alertmanager style, used by silences and by the
//! filters of notification channels.
//!
//! The semantics follow Alertmanager so that operators can paste matchers they
//! already know: regexes are fully anchored (`api` does not match `api-2`),
//! and a label the alert does not carry counts as the empty string, so
//! `team != "x"` and `team = ""` both match an alert without a `team` label.
//!
//! Matchers arrive from the API as plain data ([`Matcher`]) and are compiled
//! once into [`Matchers`], which checks the limits below so that a client
//! cannot make every alert evaluation expensive.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// At most this many matchers in one list: silences and filters are meant to
/// be read by people, and every alert is checked against every list.
pub const MAX_MATCHERS: usize = 32;
/// Longest label name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest value or regex, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;
/// Bound on the compiled size of one regex, so a short pattern such as
/// `(a{1000}){1000}` cannot take megabytes of memory per matcher.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a matcher compares the label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOp {
    /// `name="value"`
    Equal,
    /// `name!="value"`
    NotEqual,
    /// `name=~"regex"`, anchored at both ends.
    Regex,
    /// `name!~"regex"`, anchored at both ends.
    NotRegex,
}

impl MatchOp {
    /// The operator as Alertmanager writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One matcher as stored and sent over the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub op: MatchOp,
}

impl fmt::Display for Matcher {
    /// Alertmanager notation (`team=~"api|web"`), shortened so that an error
    /// about a huge matcher stays readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", shorten(&self.name), self.op.symbol(), shorten(&self.value))
    }
}

/// Why a list of matchers was refused. Each variant names the offending
/// matcher by its position (from 0) and its text.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("too many matchers: {count} (at most {MAX_MATCHERS})")]
    TooMany { count: usize },
    #[error(
        "matcher {index} ({matcher}): label name must match [a-zA-Z_][a-zA-Z0-9_]* and be at most {MAX_NAME_LEN} bytes"
    )]
    InvalidName { index: usize, matcher: String },
    #[error("matcher {index} ({matcher}): value is {len} bytes (at most {MAX_VALUE_LEN})")]
    ValueTooLong { index: usize, matcher: String, len: usize },
    #[error("matcher {index} ({matcher}): invalid regex: {source}")]
    BadRegex {
        index: usize,
        matcher: String,
        #[source]
        source: regex::Error,
    },
}

/// A compiled, validated list of matchers. An alert matches when every
/// matcher matches; an empty list matches every alert.
#[derive(Clone, Debug, Default)]
pub struct Matchers {
    list: Vec<Matcher>,
    compiled: Vec<Compiled>,
}

/// The compiled form of one matcher: regexes are built once, not per alert.
#[derive(Clone, Debug)]
enum Compiled {
    Equal(String),
    NotEqual(String),
    Regex(Regex),
    NotRegex(Regex),
}

impl Compiled {
    fn matches(&self, value: &str) -> bool {
        match self {
            Compiled::Equal(v) => value == v,
            Compiled::NotEqual(v) => value != v,
            Compiled::Regex(re) => re.is_match(value),
            Compiled::NotRegex(re) => !re.is_match(value),
        }
    }
}

impl Matchers {
    /// Validates and compiles `list`, refusing it as a whole at the first
    /// problem.
    pub fn compile(list: Vec<Matcher>) -> Result<Matchers, MatcherError> {
        if list.len() > MAX_MATCHERS {
            return Err(MatcherError::TooMany { count: list.len() });
        }
        let compiled =
            list.iter().enumerate().map(|(index, m)| compile_one(index, m)).collect::<Result<Vec<_>, _>>()?;
        Ok(Matchers { list, compiled })
    }

    /// True when every matcher matches `labels`. A missing label is read as
    /// the empty string, as in Alertmanager.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.list.iter().zip(&self.compiled).all(|(m, c)| {
            let value = labels.get(&m.name).map(String::as_str).unwrap_or("");
            c.matches(value)
        })
    }

    /// The matchers as given, for storing and showing them back.
    pub fn list(&self) -> &[Matcher] {
        &self.list
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

fn compile_one(index: usize, m: &Matcher) -> Result<Compiled, MatcherError> {
    if !valid_label_name(&m.name) {
        return Err(MatcherError::InvalidName { index, matcher: m.to_string() });
    }
    if m.value.len() > MAX_VALUE_LEN {
        return Err(MatcherError::ValueTooLong { index, matcher: m.to_string(), len: m.value.len() });
    }
    let regex = || {
        RegexBuilder::new(&format!("^(?:{})$", m.value))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|source| MatcherError::BadRegex { index, matcher: m.to_string(), source })
    };
    Ok(match m.op {
        MatchOp::Equal => Compiled::Equal(m.value.clone()),
        MatchOp::NotEqual => Compiled::NotEqual(m.value.clone()),
        MatchOp::Regex => Compiled::Regex(regex()?),
        MatchOp::NotRegex => Compiled::NotRegex(regex()?),
    })
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`, here also bounded in
/// length.
pub fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && name.len() <= MAX_NAME_LEN && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// At most 64 characters of `s`, with an ellipsis when cut.
fn shorten(s: &str) -> String {
    const KEEP: usize = 64;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher { name: name.into(), value: value.into(), op }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn matches(list: Vec<Matcher>, pairs: &[(&str, &str)]) -> bool {
        Matchers::compile(list).unwrap().matches(&labels(pairs))
    }

    #[test]
    fn equal_and_not_equal() {
        let l = &[("team", "api")];
        assert!(matches(vec![m("team", MatchOp::Equal, "api")], l));
        assert!(!matches(vec![m("team", MatchOp::Equal, "web")], l));
        assert!(!matches(vec![m("team", MatchOp::NotEqual, "api")], l));
        assert!(matches(vec![m("team", MatchOp::NotEqual, "web")], l));
    }

    #[test]
    fn regex_and_not_regex() {
        let l = &[("team", "api")];
        assert!(matches(vec![m("team", MatchOp::Regex, "api|web")], l));
        assert!(matches(vec![m("team", MatchOp::Regex, "a.*")], l));
        assert!(!matches(vec![m("team", MatchOp::Regex, "web")], l));
        assert!(!matches(vec![m("team", MatchOp::NotRegex, "api|web")], l));
        assert!(matches(vec![m("team", MatchOp::NotRegex, "web")], l));
    }

    #[test]
    fn regexes_are_anchored() {
        let l = &[("team", "api-2")];
        assert!(!matches(vec![m("team", MatchOp::Regex, "api")], l));
        assert!(!matches(vec![m("team", MatchOp::Regex, "pi-2")], l));
        assert!(matches(vec![m("team", MatchOp::NotRegex, "api")], l));
        // The group keeps an alternation anchored on both sides.
        assert!(!matches(vec![m("team", MatchOp::Regex, "x|api")], l));
        assert!(matches(vec![m("team", MatchOp::Regex, "x|api-2")], l));
    }

    #[test]
    fn missing_label_is_empty_string() {
        let none: &[(&str, &str)] = &[];
        assert!(matches(vec![m("team", MatchOp::NotEqual, "x")], none));
        assert!(matches(vec![m("team", MatchOp::Equal, "")], none));
        assert!(!matches(vec![m("team", MatchOp::Equal, "x")], none));
        assert!(matches(vec![m("team", MatchOp::Regex, ".*")], none));
        assert!(!matches(vec![m("team", MatchOp::Regex, ".+")], none));
        assert!(matches(vec![m("team", MatchOp::NotRegex, ".+")], none));
        // A label present with an empty value behaves the same.
        assert!(matches(vec![m("team", MatchOp::Equal, "")], &[("team", "")]));
    }

    #[test]
    fn all_must_match_and_empty_matches_everything() {
        let l = &[("team", "api"), ("severity", "page")];
        let both = vec![m("team", MatchOp::Equal, "api"), m("severity", MatchOp::Regex, "page|critical")];
        assert!(matches(both, l));
        let one_fails = vec![m("team", MatchOp::Equal, "api"), m("severity", MatchOp::Equal, "info")];
        assert!(!matches(one_fails, l));
        let empty = Matchers::compile(vec![]).unwrap();
        assert!(empty.is_empty());
        assert!(empty.matches(&labels(l)));
    }

    #[test]
    fn list_returns_matchers_as_given() {
        let list = vec![m("team", MatchOp::Regex, "api")];
        let compiled = Matchers::compile(list.clone()).unwrap();
        assert_eq!(compiled.list(), list.as_slice());
        assert!(!compiled.is_empty());
    }

    #[test]
    fn invalid_names_are_refused() {
        for name in ["", "1team", "team-name", "tëam", "a b", &"a".repeat(129)] {
            let err = Matchers::compile(vec![m(name, MatchOp::Equal, "x")]).unwrap_err();
            assert!(matches!(err, MatcherError::InvalidName { index: 0, .. }), "{name:?}: {err}");
        }
        for name in ["_", "team", "Team_2", "__name__", &"a".repeat(128)] {
            assert!(Matchers::compile(vec![m(name, MatchOp::Equal, "x")]).is_ok());
        }
    }

    #[test]
    fn error_names_the_offending_matcher() {
        let err = Matchers::compile(vec![m("team", MatchOp::Equal, "api"), m("bad-name", MatchOp::NotEqual, "x")])
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("matcher 1"), "{text}");
        assert!(text.contains(r#"bad-name!="x""#), "{text}");
    }

    #[test]
    fn long_values_are_refused() {
        assert!(Matchers::compile(vec![m("a", MatchOp::Equal, &"x".repeat(1024))]).is_ok());
        let err = Matchers::compile(vec![m("a", MatchOp::Equal, &"x".repeat(1025))]).unwrap_err();
        assert!(matches!(err, MatcherError::ValueTooLong { len: 1025, .. }));
        // The message stays short even for a huge value.
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn bad_regex_is_refused() {
        for op in [MatchOp::Regex, MatchOp::NotRegex] {
            let err = Matchers::compile(vec![m("team", op, "(api")]).unwrap_err();
            assert!(matches!(err, MatcherError::BadRegex { index: 0, .. }), "{err}");
            assert!(err.to_string().contains("team"), "{err}");
        }
        // Not a regex for the plain operators.
        assert!(Matchers::compile(vec![m("team", MatchOp::Equal, "(api")]).is_ok());
    }

    #[test]
    fn huge_regex_is_refused() {
        let err = Matchers::compile(vec![m("team", MatchOp::Regex, "(a{1000}){1000}")]).unwrap_err();
        assert!(matches!(err, MatcherError::BadRegex { .. }), "{err}");
    }

    #[test]
    fn too_many_matchers_are_refused() {
        let list = |n| (0..n).map(|i| m(&format!("l{i}"), MatchOp::Equal, "")).collect();
        assert!(Matchers::compile(list(MAX_MATCHERS)).is_ok());
        let err = Matchers::compile(list(MAX_MATCHERS + 1)).unwrap_err();
        assert!(matches!(err, MatcherError::TooMany { count: 33 }), "{err}");
    }

    #[test]
    fn serde_uses_snake_case_ops() {
        let json = r#"{"name":"team","value":"api","op":"not_regex"}"#;
        let parsed: Matcher = serde_json::from_str(json).unwrap();
        assert_eq!(parsed, m("team", MatchOp::NotRegex, "api"));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
        for (op, s) in
            [(MatchOp::Equal, "\"equal\""), (MatchOp::NotEqual, "\"not_equal\""), (MatchOp::Regex, "\"regex\"")]
        {
            assert_eq!(serde_json::to_string(&op).unwrap(), s);
        }
    }
}
