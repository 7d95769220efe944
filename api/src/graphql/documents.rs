//! Parsed GraphQL documents, kept by their text: clients send the same few operations over and
//! over, and parsing is a fifth of the gateway's CPU for a small mutation (pest). A bounded map:
//! past `MAX_ENTRIES` an arbitrary entry makes room, and long documents are not kept, so a client
//! sending endless distinct documents costs a parse each (as without the cache) and nothing more.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError};

/// Documents kept at most.
pub const MAX_ENTRIES: usize = 1_024;
/// Longest document text kept (bytes).
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, ExecutableDocument>>,
}

impl DocumentCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        // A plain map: a panic elsewhere cannot leave it half-updated.
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `request` its parsed document, from the cache or parsed (and then kept).
    pub fn parse(&self, request: &mut Request) -> Result<(), ServerError> {
        let cached = self.lock().get(&request.query).cloned();
        if let Some(document) = cached {
            request.set_parsed_query(document);
            return Ok(());
        }
        let document = request.parsed_query()?.clone();
        if request.query.len() <= MAX_TEXT_BYTES {
            let mut documents = self.lock();
            if documents.len() >= MAX_ENTRIES
                && let Some(evicted) = documents.keys().next().cloned()
            {
                documents.remove(&evicted);
            }
            documents.insert(request.query.clone(), document);
        }
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
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
