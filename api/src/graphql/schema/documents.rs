//! Parsed GraphQL documents, kept by their text: clients send the same few operations over and
//! over, and parsing is a fifth of the gateway's CPU for a small mutation (pest). A bounded map:
//! past `MAX_ENTRIES` an arbitrary entry makes room, and long documents are not kept, so a client
//! sending endless distinct documents costs a parse each (as without the cache) and nothing more.
//! A document that declares no variables is also validated once per operation name: without
//! variables, validation depends only on the text, the operation and the schema, so its success
//! is kept with the document and given again (async-graphql's 22 rules walk it per request).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ValidationResult};

/// Documents kept at most.
pub const MAX_ENTRIES: usize = 1_024;
/// Longest document text kept (bytes).
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

#[derive(Default)]
pub struct DocumentCache {
    documents: ByText<Cached>,
}

/// A map from a document's text, holding at most `MAX_ENTRIES` (an arbitrary entry makes room):
/// what is kept per text here and by the prepared operations (`super::prepared`).
pub struct ByText<V>(Mutex<HashMap<String, V>>);

impl<V> Default for ByText<V> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<V> ByText<V> {
    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, V>> {
        // A plain map: a panic elsewhere cannot leave it half-updated.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `value` for `text`, making room first when the map is full.
    pub fn keep(&self, text: String, value: V) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES
            && let Some(evicted) = map.keys().next().cloned()
        {
            map.remove(&evicted);
        }
        map.insert(text, value);
    }
}

/// A kept document; for one that declares no variables, the operation name it passed
/// validation for, once it has.
struct Cached {
    document: ExecutableDocument,
    declares_no_variables: bool,
    validated: Option<(Option<String>, ValidationResult)>,
}

/// What is known of a request's validation (`DocumentCache::parse`).
pub enum Validated {
    /// This document and operation passed it before: its result then.
    Passed(ValidationResult),
    /// Not yet: once it passes, `DocumentCache::validated` keeps the result.
    Unknown,
    /// Never kept: the document declares variables, or is not kept itself.
    Never,
}

impl DocumentCache {
    /// Gives `request` its parsed document, from the cache or parsed (and then kept), and what
    /// is known of its validation.
    pub fn parse(&self, request: &mut Request) -> Result<Validated, ServerError> {
        let cached = self.documents.lock().get(&request.query).map(|cached| {
            let validated = match &cached.validated {
                Some((operation, result)) if *operation == request.operation_name => {
                    Validated::Passed(*result)
                }
                _ if cached.declares_no_variables => Validated::Unknown,
                _ => Validated::Never,
            };
            (cached.document.clone(), validated)
        });
        if let Some((document, validated)) = cached {
            request.set_parsed_query(document);
            return Ok(validated);
        }
        let document = request.parsed_query()?.clone();
        if request.query.len() > MAX_TEXT_BYTES {
            return Ok(Validated::Never);
        }
        let declares_no_variables = document
            .operations
            .iter()
            .all(|(_, operation)| operation.node.variable_definitions.is_empty());
        self.documents.keep(
            request.query.clone(),
            Cached {
                document,
                declares_no_variables,
                validated: None,
            },
        );
        Ok(if declares_no_variables {
            Validated::Unknown
        } else {
            Validated::Never
        })
    }

    /// Keeps that `query` passed validation as `operation`, when it is kept and declares no
    /// variables (validation then depends on nothing else).
    pub fn validated(&self, query: &str, operation: Option<String>, result: ValidationResult) {
        if let Some(cached) = self.documents.lock().get_mut(query)
            && cached.declares_no_variables
        {
            cached.validated = Some((operation, result));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.documents.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_given_again() {
        let cache = DocumentCache::default();
        let text = "query { health { seriesTrained } }";
        let mut first = Request::new(text);
        cache.parse(&mut first).unwrap();
        let mut second = Request::new(text);
        cache.parse(&mut second).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(
            format!("{:?}", first.parsed_query().unwrap()),
            format!("{:?}", second.parsed_query().unwrap())
        );
    }

    #[test]
    fn a_validated_document_without_variables_is_validated_once_per_operation() {
        let cache = DocumentCache::default();
        let passed = ValidationResult {
            cache_control: Default::default(),
            complexity: 2,
            depth: 2,
        };
        let text = "query Q { health { seriesTrained } }";
        let passed_before = |validated| match validated {
            Validated::Passed(result) => Some(result.complexity),
            Validated::Unknown | Validated::Never => None,
        };
        assert!(passed_before(cache.parse(&mut Request::new(text)).unwrap()).is_none());
        cache.validated(text, Some("Q".into()), passed);
        let again = cache
            .parse(&mut Request::new(text).operation_name("Q"))
            .unwrap();
        assert_eq!(passed_before(again), Some(2));
        // Another operation name is validated afresh.
        assert!(passed_before(cache.parse(&mut Request::new(text)).unwrap()).is_none());
        // A document with variables is validated every time (values change what passes).
        let with_variables = "query Q($n: Int) { health { seriesTrained } }";
        cache.parse(&mut Request::new(with_variables)).unwrap();
        cache.validated(with_variables, Some("Q".into()), passed);
        let mut request = Request::new(with_variables).operation_name("Q");
        assert!(passed_before(cache.parse(&mut request).unwrap()).is_none());
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_no_error_or_long_text() {
        let cache = DocumentCache::default();
        for i in 0..MAX_ENTRIES + 100 {
            cache
                .parse(&mut Request::new(format!(
                    "query Q{i} {{ health {{ seriesTrained }} }}"
                )))
                .unwrap();
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        let before = cache.len();
        assert!(cache.parse(&mut Request::new("query {")).is_err());
        let long = format!(
            "query {{ health {{ {} }} }}",
            "seriesTrained ".repeat(1_000)
        );
        cache.parse(&mut Request::new(long)).unwrap();
        assert_eq!(cache.len(), before);
    }
}
