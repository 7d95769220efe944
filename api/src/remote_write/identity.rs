//! A remote-written series' identity in anomaly: its label set, checked and in canonical order,
//! and the series id derived from it. The id is the metric name (characters outside
//! `[A-Za-z0-9_.:-]` made `_`, cut to 100) then `:` then the first 16 hex digits of the SHA-256
//! of the label set (for each label in name order: name, byte 0xFF, value, byte 0xFF), so it is
//! stable across restarts and gateways, at most 117 characters, and two label sets share an id
//! only by a 64-bit hash collision.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use anomaly_workers::domain::SeriesId;

use super::wire::Label;

/// Longest metric name kept whole in a series id.
const NAME_IN_ID: usize = 100;

/// Most labels a series may carry.
pub const MAX_LABELS: usize = 64;
/// Most bytes of label names and values together.
pub const MAX_LABEL_BYTES: usize = 8 * 1024;

/// A label set that is not a series: the protocol's rules, and anomaly's bounds.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadLabels {
    #[error("a series has no __name__ label")]
    NoName,
    #[error("a label name or value is not UTF-8")]
    NotUtf8,
    #[error("a label has an empty name")]
    EmptyName,
    #[error("label name {0:?} is not [a-zA-Z_][a-zA-Z0-9_]*")]
    BadName(String),
    #[error("label {0:?} appears twice in one series")]
    Repeated(String),
    #[error("a series has more than {MAX_LABELS} labels or {MAX_LABEL_BYTES} bytes of them")]
    TooBig,
}

/// The canonical form of a label set: its labels sorted by name, encoded as the hash input
/// (which is also the key remote-written series are found by).
pub fn canonical(labels: &[Label], into: &mut Vec<u8>) -> Result<(), BadLabels> {
    into.clear();
    if labels.len() > MAX_LABELS {
        return Err(BadLabels::TooBig);
    }
    // Prometheus sends labels sorted; only a set that is not is copied to sort it.
    let sorted_copy;
    let order: &[Label] = if labels.windows(2).all(|w| w[0].name < w[1].name) {
        labels
    } else {
        let mut copy = labels.to_vec();
        copy.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = copy.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(BadLabels::Repeated(
                String::from_utf8_lossy(&w[0].name).into_owned(),
            ));
        }
        sorted_copy = copy;
        &sorted_copy
    };
    for label in order {
        if label.name.is_empty() {
            return Err(BadLabels::EmptyName);
        }
        // The names appear unquoted in the results' exposition and Alertmanager's labels.
        let name_char = |(i, b): (usize, &u8)| {
            b.is_ascii_alphabetic() || *b == b'_' || (i > 0 && b.is_ascii_digit())
        };
        if !label.name.iter().enumerate().all(name_char) {
            return Err(BadLabels::BadName(
                String::from_utf8_lossy(&label.name)
                    .chars()
                    .take(64)
                    .collect(),
            ));
        }
        into.extend_from_slice(&label.name);
        into.push(0xff);
        into.extend_from_slice(&label.value);
        into.push(0xff);
    }
    // Less the two separators of each label.
    if into.len() - 2 * labels.len() > MAX_LABEL_BYTES {
        return Err(BadLabels::TooBig);
    }
    Ok(())
}

/// The labels of a canonical form, in order, as text.
pub fn labels_of(canonical: &[u8]) -> Result<Vec<(String, String)>, BadLabels> {
    let mut parts = canonical.split(|b| *b == 0xff);
    let mut labels = Vec::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned);
        labels.push((
            text(name).map_err(|_| BadLabels::NotUtf8)?,
            text(value).map_err(|_| BadLabels::NotUtf8)?,
        ));
    }
    Ok(labels)
}

/// The series id of a canonical label set whose metric name is `name`.
pub fn series_id(name: &str, canonical: &[u8]) -> SeriesId {
    let mut id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(NAME_IN_ID)
        .collect();
    id.push(':');
    for byte in &Sha256::digest(canonical)[..8] {
        let _ = write!(id, "{byte:02x}");
    }
    SeriesId::parse(&id).expect("a sanitised name and hex digits form a valid series id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(labels: &[(&str, &str)]) -> Result<SeriesId, BadLabels> {
        let labels: Vec<Label> = labels.iter().map(|(n, v)| Label::new(n, v)).collect();
        let mut key = Vec::new();
        canonical(&labels, &mut key)?;
        let parsed = labels_of(&key)?;
        let name = parsed
            .iter()
            .find(|(n, _)| n == "__name__")
            .ok_or(BadLabels::NoName)?;
        Ok(series_id(&name.1, &key))
    }

    #[test]
    fn the_id_is_the_name_and_a_hash_of_the_label_set() {
        let id = id_of(&[("__name__", "http_requests_total"), ("job", "api")]).unwrap();
        // sha256("__name__\xffhttp_requests_total\xffjob\xffapi\xff"), first 8 bytes.
        assert_eq!(id.as_str(), "http_requests_total:13c36b564025a609");
        let reordered = id_of(&[("job", "api"), ("__name__", "http_requests_total")]).unwrap();
        assert_eq!(id, reordered, "label order does not matter");
        let other = id_of(&[("__name__", "http_requests_total"), ("job", "web")]).unwrap();
        assert_ne!(id, other);
    }

    #[test]
    fn long_and_odd_names_stay_valid_ids() {
        let long = "a".repeat(500);
        let id = id_of(&[("__name__", &long)]).unwrap();
        assert_eq!(id.as_str().len(), 100 + 1 + 16);
        let odd = id_of(&[("__name__", "temp °C/room")]).unwrap();
        assert!(odd.as_str().starts_with("temp__C_room:"), "{odd}");
    }

    #[test]
    fn bad_label_sets_are_refused() {
        assert_eq!(
            id_of(&[("__name__", "x"), ("a", "1"), ("a", "2")]),
            Err(BadLabels::Repeated("a".into()))
        );
        assert_eq!(
            id_of(&[("__name__", "x"), ("", "1")]),
            Err(BadLabels::EmptyName)
        );
        let many: Vec<(String, String)> =
            (0..65).map(|i| (format!("l{i:02}"), "v".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(id_of(&many), Err(BadLabels::TooBig));
        let huge = "v".repeat(MAX_LABEL_BYTES + 1);
        assert_eq!(
            id_of(&[("__name__", "x"), ("a", &huge)]),
            Err(BadLabels::TooBig)
        );
    }
}
