//! The platform's vocabulary as types whose constructors reject bad input, so that code past the
//! edge never sees an invalid series id, version or point.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an input was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

fn invalid(text: impl Into<String>) -> InvalidInput {
    InvalidInput(text.into())
}

/// A series identifier: 1 to 128 characters from `[A-Za-z0-9_.:-]`. Shared, not copied: a
/// predict hands its series to its event, its answer and the metrics tally, and a clone is a
/// reference count instead of an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(std::sync::Arc<str>);

impl Serialize for SeriesId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SeriesId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParsedText {
            expecting: "a series id",
            parse: SeriesId::parse,
        })
    }
}

/// Reads a value of the vocabulary from its text as it lies in the input (no intermediate
/// `String`), through its parser, whose refusal is the error.
struct ParsedText<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, InvalidInput>,
}

impl<T> serde::de::Visitor<'_> for ParsedText<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: serde::de::Error>(self, raw: &str) -> Result<T, E> {
        (self.parse)(raw).map_err(E::custom)
    }
}

impl SeriesId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.chars().all(allowed) {
            return Err(invalid(
                "Invalid series_id: use 1 to 128 characters from A-Z, a-z, 0-9, '_', '.', ':', '-'",
            ));
        }
        Ok(Self(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets a map keyed by series be probed with a `&str` (no copy of the id per lookup); hashes and
/// compares as the string it holds.
impl std::borrow::Borrow<str> for SeriesId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SeriesId {
    type Error = InvalidInput;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<SeriesId> for String {
    fn from(id: SeriesId) -> Self {
        id.0.as_ref().to_owned()
    }
}

/// A model version: `v1`, `v2`, ... Every fit of a series makes the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(u32);

/// Written as its text (`v3`), made on the stack (every predict's answer and event carries one).
impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 11];
        let mut at = text.len();
        let mut n = self.0;
        loop {
            at -= 1;
            text[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        at -= 1;
        text[at] = b'v';
        serializer.serialize_str(std::str::from_utf8(&text[at..]).expect("ASCII digits"))
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParsedText {
            expecting: "a model version (v1, v2, ...)",
            parse: Version::parse,
        })
    }
}

impl Version {
    pub const FIRST: Version = Version(1);
    /// The highest number a version's text (`v` and at most nine digits) can carry.
    pub const MAX_NUMBER: u32 = 999_999_999;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let refuse = || invalid("Invalid version: expected v<N>, for example v1");
        let digits = raw.strip_prefix('v').ok_or_else(refuse)?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse());
        }
        let number = digits.parse::<u32>().map_err(|_| refuse())?;
        Self::from_number(number).map_err(|_| refuse())
    }

    pub fn from_number(n: u32) -> Result<Self, InvalidInput> {
        match n {
            0 => Err(invalid("Invalid version: numbers start at 1")),
            n if n > Self::MAX_NUMBER => {
                Err(invalid("Invalid version: numbers have at most nine digits"))
            }
            n => Ok(Self(n)),
        }
    }

    pub fn number(self) -> u32 {
        self.0
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl TryFrom<String> for Version {
    type Error = InvalidInput;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> Self {
        v.to_string()
    }
}

/// One observation: a Unix timestamp (seconds, as the seed used) and a finite value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub timestamp: i64,
    pub value: f64,
}

impl Point {
    pub fn parse(timestamp: i64, value: f64) -> Result<Self, InvalidInput> {
        if !value.is_finite() {
            return Err(invalid("value must be a finite number"));
        }
        Ok(Self { timestamp, value })
    }
}

/// Points a model can be trained on: at least three, not all the same value.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet(Vec<Point>);

impl TrainingSet {
    pub const MIN_POINTS: usize = 3;

    pub fn parse(points: Vec<Point>) -> Result<Self, InvalidInput> {
        if points.is_empty() {
            return Err(invalid("No data points provided"));
        }
        if points.len() < Self::MIN_POINTS {
            return Err(invalid(format!(
                "At least {} data points are required, got {}",
                Self::MIN_POINTS,
                points.len()
            )));
        }
        if let Some(bad) = points.iter().position(|p| !p.value.is_finite()) {
            return Err(invalid(format!(
                "value at index {bad} must be a finite number"
            )));
        }
        let first = points[0].value;
        if points.iter().all(|p| p.value == first) {
            return Err(invalid(
                "Values are constant: a model needs at least two distinct values",
            ));
        }
        Ok(Self(points))
    }

    /// The seed's second body shape: parallel arrays.
    pub fn from_arrays(timestamps: Vec<i64>, values: Vec<f64>) -> Result<Self, InvalidInput> {
        if timestamps.len() != values.len() {
            return Err(invalid(format!(
                "timestamps and values must have the same length (got {} and {})",
                timestamps.len(),
                values.len()
            )));
        }
        let points = timestamps
            .into_iter()
            .zip(values)
            .map(|(timestamp, value)| Point { timestamp, value })
            .collect();
        Self::parse(points)
    }

    pub fn points(&self) -> &[Point] {
        &self.0
    }

    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.0.iter().map(|p| p.value)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_points(self) -> Vec<Point> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                timestamp: i as i64,
                value,
            })
            .collect()
    }

    #[test]
    fn series_ids_follow_the_documented_alphabet() {
        for ok in ["sensor_01", "a", "host-1.cpu:idle", &"x".repeat(128)] {
            assert_eq!(SeriesId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "has space",
            "slash/",
            "é",
            "semi;colon",
            &"x".repeat(129),
        ] {
            assert!(SeriesId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn versions_are_v_followed_by_a_positive_number() {
        assert_eq!(Version::parse("v1").unwrap().number(), 1);
        assert_eq!(Version::parse("v42").unwrap().to_string(), "v42");
        for bad in [
            "",
            "v",
            "v0",
            "1",
            "V1",
            "v-1",
            "v1.0",
            "v 1",
            "v99999999999",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Version::FIRST.next().to_string(), "v2");
        // A number read from storage obeys the same bounds as the text.
        assert!(Version::from_number(0).is_err());
        assert!(Version::from_number(Version::MAX_NUMBER + 1).is_err());
        assert_eq!(
            Version::from_number(Version::MAX_NUMBER).unwrap(),
            Version::parse("v999999999").unwrap()
        );
    }

    #[test]
    fn series_ids_and_versions_travel_as_their_text_and_are_checked_when_read() {
        for number in [1, 9, 10, 42, 1_000_000, 999_999_999] {
            let version = Version::from_number(number).unwrap();
            let text = serde_json::to_string(&version).unwrap();
            assert_eq!(text, format!("\"v{number}\""));
            assert_eq!(serde_json::from_str::<Version>(&text).unwrap(), version);
        }
        let series = SeriesId::parse("host-1.cpu:idle").unwrap();
        let text = serde_json::to_string(&series).unwrap();
        assert_eq!(text, "\"host-1.cpu:idle\"");
        assert_eq!(serde_json::from_str::<SeriesId>(&text).unwrap(), series);
        // Escaped text is read as what it says.
        assert_eq!(
            serde_json::from_str::<SeriesId>(r#""a\u002db""#)
                .unwrap()
                .as_str(),
            "a-b"
        );
        for bad in [r#""has space""#, r#""""#, "7", "null"] {
            assert!(serde_json::from_str::<SeriesId>(bad).is_err(), "{bad}");
        }
        for bad in [r#""v0""#, r#""1""#, "1", r#""v99999999999""#] {
            assert!(serde_json::from_str::<Version>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn points_must_be_finite() {
        assert!(Point::parse(1, 0.0).is_ok(), "zero is a valid value");
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(Point::parse(1, bad).is_err());
        }
    }

    #[test]
    fn a_training_set_needs_three_distinct_enough_points() {
        assert!(TrainingSet::parse(pts(&[10.0, 10.5, 11.0])).is_ok());
        assert_eq!(
            TrainingSet::parse(vec![]).unwrap_err().0,
            "No data points provided"
        );
        assert!(
            TrainingSet::parse(pts(&[1.0, 2.0]))
                .unwrap_err()
                .0
                .contains("At least 3")
        );
        assert!(
            TrainingSet::parse(pts(&[5.0, 5.0, 5.0]))
                .unwrap_err()
                .0
                .contains("constant")
        );
        assert!(TrainingSet::parse(pts(&[1.0, f64::NAN, 3.0])).is_err());
    }

    #[test]
    fn parallel_arrays_must_have_equal_lengths() {
        assert!(TrainingSet::from_arrays(vec![1, 2, 3], vec![1.0, 2.0, 3.0]).is_ok());
        let err = TrainingSet::from_arrays(vec![1, 2, 3], vec![1.0, 2.0]).unwrap_err();
        assert!(err.0.contains("same length"), "{err}");
        assert!(TrainingSet::from_arrays(vec![], vec![]).is_err());
    }
}
