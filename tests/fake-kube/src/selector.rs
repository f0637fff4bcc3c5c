//! Label selectors as the API server reads them from `?labelSelector=`:
//! equality (`a=b`, `a==b`, `a!=b`), sets (`a in (x,y)`, `a notin (x)`) and
//! existence (`a`, `!a`), joined by commas.

use serde_json::{Map, Value};

#[derive(Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed selector; the empty one matches everything.
#[derive(Debug, Default, PartialEq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    pub fn parse(text: &str) -> Result<Self, String> {
        split_top_level(text)
            .into_iter()
            .map(str::trim)
            .filter(|term| !term.is_empty())
            .map(requirement)
            .collect::<Result<_, _>>()
            .map(Selector)
    }

    /// Whether an object with these `metadata.labels` is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let label = |key: &str| labels.and_then(|labels| labels.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value),
            Requirement::NotEquals(key, value) => label(key) != Some(value),
            Requirement::In(key, values) => label(key).is_some_and(|v| values.iter().any(|x| x == v)),
            Requirement::NotIn(key, values) => !label(key).is_some_and(|v| values.iter().any(|x| x == v)),
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::DoesNotExist(key) => label(key).is_none(),
        })
    }
}

/// Commas inside `( )` belong to a set, not between requirements.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn requirement(term: &str) -> Result<Requirement, String> {
    let invalid = || format!("unable to parse requirement: {term:?}");
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key.trim().to_owned()));
    }
    for (operator, build) in [
        ("!=", Requirement::NotEquals as fn(String, String) -> Requirement),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((key, value)) = term.split_once(operator) {
            return Ok(build(key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let words: Vec<&str> = term.splitn(3, ' ').collect();
    match words.as_slice() {
        [key] => Ok(Requirement::Exists((*key).to_owned())),
        [key, operator, set] => {
            let set = set.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(invalid)?;
            let values = set.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect();
            match *operator {
                "in" => Ok(Requirement::In((*key).to_owned(), values)),
                "notin" => Ok(Requirement::NotIn((*key).to_owned(), values)),
                _ => Err(invalid()),
            }
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_operator_selects_as_the_api_server_does() {
        let ide = labels(json!({"app": "ide", "tier": "small"}));
        let cases = [
            ("", true),
            ("app=ide", true),
            ("app==ide,tier=small", true),
            ("app!=ide", false),
            ("app!=db", true),
            ("tier in (small, large)", true),
            ("tier notin (small)", false),
            ("owner notin (ada)", true),
            ("app", true),
            ("!app", false),
            ("!owner,app in (ide)", true),
        ];
        for (text, expected) in cases {
            let selector = Selector::parse(text).expect(text);
            assert_eq!(selector.matches(Some(&ide)), expected, "{text}");
        }
        assert!(!Selector::parse("app=ide").expect("parses").matches(None));
    }

    #[test]
    fn a_malformed_set_is_refused() {
        assert!(Selector::parse("tier in small").is_err());
        assert!(Selector::parse("tier within (a)").is_err());
    }
}
