//! Which remote-written series anomaly models: a PromQL series selector
//! (`http_requests_total{job="api"}`, `{__name__=~"node_cpu.*",mode!="idle"}`), parsed once from
//! the configuration. Matchers are `=`, `!=`, `=~` and `!~`; regular expressions are anchored at
//! both ends, and a label a series lacks matches as the empty string, as in Prometheus.

use regex::Regex;

/// A parsed series selector; `{}` (or an empty text) matches every series.
#[derive(Debug, Clone)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

#[derive(Debug, Clone)]
struct Matcher {
    label: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equal(String),
    NotEqual(String),
    Matches(Regex),
    NotMatches(Regex),
}

/// Why a selector does not parse; the text shows where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("series selector {selector:?}: {reason}")]
pub struct SelectorError {
    selector: String,
    reason: String,
}

impl Selector {
    /// A selector that matches every series.
    pub fn all() -> Self {
        Self {
            matchers: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let fail = |reason: String| SelectorError {
            selector: text.to_owned(),
            reason,
        };
        let mut rest = text.trim();
        let mut matchers = Vec::new();
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if name_len > 0 {
            let name = &rest[..name_len];
            if name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(fail(format!("{name:?} is not a metric name")));
            }
            matchers.push(Matcher {
                label: "__name__".into(),
                test: Test::Equal(name.to_owned()),
            });
            rest = rest[name_len..].trim_start();
        }
        if rest.is_empty() {
            return Ok(Self { matchers });
        }
        let Some(inner) = rest.strip_prefix('{') else {
            return Err(fail(format!("expected `{{` at {rest:?}")));
        };
        rest = inner;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                if !after.trim().is_empty() {
                    return Err(fail(format!("unexpected {:?} after `}}`", after.trim())));
                }
                return Ok(Self { matchers });
            }
            let label_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let label = &rest[..label_len];
            if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(fail(format!("expected a label name at {rest:?}")));
            }
            rest = rest[label_len..].trim_start();
            let (op, after) = ["=~", "!~", "!=", "="]
                .iter()
                .find_map(|op| rest.strip_prefix(op).map(|after| (*op, after)))
                .ok_or_else(|| fail(format!("expected =, !=, =~ or !~ at {rest:?}")))?;
            let (value, after) = quoted(after.trim_start()).map_err(&fail)?;
            let regex = |value: &str| {
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|err| fail(format!("label {label}: {err}")))
            };
            let test = match op {
                "=" => Test::Equal(value),
                "!=" => Test::NotEqual(value),
                "=~" => Test::Matches(regex(&value)?),
                _ => Test::NotMatches(regex(&value)?),
            };
            matchers.push(Matcher {
                label: label.to_owned(),
                test,
            });
            rest = after.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err(fail(format!("expected `,` or `}}` at {rest:?}")));
            }
        }
    }

    /// Whether a series with these labels is selected; `label` answers a label's value.
    pub fn matches<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matchers.iter().all(|m| {
            let value = label(&m.label).unwrap_or("");
            match &m.test {
                Test::Equal(want) => value == want,
                Test::NotEqual(want) => value != want,
                Test::Matches(re) => re.is_match(value),
                Test::NotMatches(re) => !re.is_match(value),
            }
        })
    }
}

/// A quoted string (`"..."` or `'...'`, with `\` escapes) and what follows it.
fn quoted(text: &str) -> Result<(String, &str), String> {
    let mut chars = text.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('"' | '\''))) => q,
        _ => return Err(format!("expected a quoted value at {text:?}")),
    };
    let mut value = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, other)) => value.push(other),
                None => break,
            },
            c if c == quote => return Ok((value, &text[at + 1..])),
            c => value.push(c),
        }
    }
    Err(format!("unterminated string at {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selects(selector: &str, labels: &[(&str, &str)]) -> bool {
        Selector::parse(selector)
            .unwrap()
            .matches(|name| labels.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    #[test]
    fn matchers_follow_promql() {
        let cpu = [("__name__", "node_cpu_seconds_total"), ("mode", "user")];
        assert!(selects("", &cpu));
        assert!(selects("{}", &cpu));
        assert!(selects("node_cpu_seconds_total", &cpu));
        assert!(!selects("node_cpu", &cpu));
        assert!(selects(
            r#"{__name__=~"http_requests_total|node_cpu.*"}"#,
            &cpu
        ));
        assert!(
            !selects(r#"{__name__=~"cpu"}"#, &cpu),
            "regexes are anchored"
        );
        assert!(selects(
            r#"node_cpu_seconds_total{mode!="idle", job!~"x.+"}"#,
            &cpu
        ));
        assert!(!selects(r#"{mode="idle"}"#, &cpu));
        assert!(selects(r#"{job=""}"#, &cpu), "a missing label is empty");
        assert!(selects(r#"{mode='us\'er'}"#, &[("mode", "us'er")]));
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            "{mode}",
            "{mode=user}",
            r#"{mode="user""#,
            r#"{mode=~"("}"#,
            r#"up{} extra"#,
            "9up",
            r#"{mode="a" job="b"}"#,
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
