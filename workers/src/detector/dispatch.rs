//! `DetectorSpec` and `DetectorParams`, generated from the registry (`for_each_detector!`): one
//! variant per kind, and every method a `match` that hands the call to the kind's [`Detector`]
//! impl. Their JSON is what models and checkpoints store: `{"kind": "<name>", ...fields}`.

// The registry names each kind's types as `mod.rs` re-exports them: all of them are in scope
// here, so a new kind adds no import.
use super::*;

macro_rules! detectors {
    ($($name:ident => $variant:ident($options:ty, $fitted:ty)),* $(,)?) => {
        /// What the caller asks `fit` to build: a detector kind and its options.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum DetectorSpec {
            $($variant($options),)*
        }

        impl DetectorSpec {
            /// Every kind's name, the default first.
            pub const NAMES: [&'static str; [$(stringify!($name)),*].len()] =
                [$(stringify!($name)),*];

            pub fn fit(&self, training: &TrainingSet) -> Result<DetectorParams, InvalidInput> {
                Ok(match self {
                    $(Self::$variant(o) => {
                        DetectorParams::$variant(<$fitted as Detector>::fit(o, training)?)
                    })*
                })
            }

            /// The spec of a kind by name with default options (`anomaly nab --detector NAME`).
            pub fn named(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some(Self::$variant(<$options>::default())),)*
                    _ => None,
                }
            }

            /// About how much work scoring and learning one point takes, in units of a few
            /// floating-point operations: what `/detect` and `predictBatch` budget by.
            pub fn point_cost(&self) -> u64 {
                match self {
                    $(Self::$variant(o) => <$fitted as Detector>::point_cost(o),)*
                }
            }

            /// The kind's name, as `named` takes it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($name),)*
                }
            }
        }

        /// A fitted detector with its learning state: what a model version stores and what the
        /// predictor scores with (and checkpoints as it learns).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum DetectorParams {
            $($variant($fitted),)*
        }

        impl DetectorParams {
            /// The detector's name as answers and storage show it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($name),)*
                }
            }

            /// Points to stay quiet after an alert when the alert options do not say: the `art`
            /// detector's one-alert-per-event spell, 0 for the others.
            pub fn quiet_points(&self) -> u64 {
                match self {
                    $(Self::$variant(d) => Detector::quiet_points(d),)*
                }
            }

            /// Whether a value inside the band can be anomalous (a novel pattern, not only a
            /// value out of range).
            pub fn flags_patterns(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$fitted as Detector>::FLAGS_PATTERNS,)*
                }
            }

            /// Bytes of memory the fitted detector holds for its series (itself and what it
            /// points to).
            pub fn state_bytes(&self) -> usize {
                std::mem::size_of::<Self>()
                    + match self {
                        $(Self::$variant(d) => Detector::heap_bytes(d),)*
                    }
            }

            /// Whether observing a point changes the state (and so whether it is worth
            /// checkpointing).
            pub fn is_online(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$fitted as Detector>::IS_ONLINE,)*
                }
            }

            /// The verdict on `point` given everything learnt so far; changes nothing.
            pub fn score(&self, point: Point) -> Verdict {
                match self {
                    $(Self::$variant(d) => Detector::score(d, point),)*
                }
            }

            /// Scores `point`, then learns from it: the predictor's path.
            pub fn observe(&mut self, point: Point) -> Verdict {
                match self {
                    $(Self::$variant(d) => Detector::observe(d, point),)*
                }
            }
        }
    };
}

crate::for_each_detector!(detectors);

/// The default: `art`, chosen on NAB (see the README's detection section).
impl Default for DetectorSpec {
    fn default() -> Self {
        Self::Art(ArtOptions::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::testing::{baseline, training};

    /// The registry's name and the serde tag (the variant's snake_case) must agree: `named`,
    /// `name` and stored JSON all use the kind's name.
    #[test]
    fn every_kind_is_named_as_its_json_tags_it() {
        assert_eq!(DetectorSpec::default(), DetectorSpec::named("art").unwrap());
        assert_eq!(DetectorSpec::NAMES[0], "art", "the default comes first");
        for name in DetectorSpec::NAMES {
            let spec = DetectorSpec::named(name).unwrap();
            assert_eq!(spec.name(), name);
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(json["kind"], name);
            assert_eq!(serde_json::from_value::<DetectorSpec>(json).unwrap(), spec);
            let fitted = spec.fit(&training(&baseline(300, 1))).unwrap();
            assert_eq!(fitted.name(), name);
            assert_eq!(serde_json::to_value(&fitted).unwrap()["kind"], name);
        }
        assert!(DetectorSpec::named("Art").is_none());
    }

    /// The APIs accept the union of the options in `for_each_detector_option!`: a kind's option
    /// missing there could not be set through them.
    #[test]
    fn every_option_of_every_kind_is_in_the_options_list() {
        macro_rules! names {
            ($($option:ident: $ty:ident),* $(,)?) => {
                [$(stringify!($option)),*]
            };
        }
        let listed = crate::for_each_detector_option!(names);
        for name in DetectorSpec::NAMES {
            let json = serde_json::to_value(DetectorSpec::named(name).unwrap()).unwrap();
            for option in json.as_object().unwrap().keys().filter(|k| *k != "kind") {
                assert!(listed.contains(&option.as_str()), "{name}: {option}");
            }
        }
    }
}
