//! What one GraphQL request may make the server spend, priced before it runs. async-graphql's own
//! depth and complexity checks walk a fragment again at every spread (24 levels of fragments
//! spreading the next twice, 1 KB of text, expand into 2^24 fields and gigabytes before any
//! limit sees them) and count a list as one field. This extension prices the parsed document
//! first: each fragment once (memoised), every field 1, times the page a list field returns
//! (`first`, or the field's default or bound), and introspection on its own budget (it reads
//! only the schema, and the standard introspection query is deeper than normal operations may
//! be). It also stops a request at its time limit and refuses an answer over its size limit, and
//! gives parse and validation errors an `extensions.code`, and refuses mutations to the read-only
//! token (`FORBIDDEN`).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::documents::Validated;
use crate::auth::{Access, READ_ONLY_MESSAGE};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest, NextValidation,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationDefinition, OperationType,
    Selection, SelectionSet,
};
use async_graphql::{
    Name, Pos, Positioned, Request, Response, ServerError, ServerResult, ValidationResult, Value,
    Variables,
};

/// Default of `GRAPHQL_MAX_COST`.
pub const DEFAULT_MAX_COST: u64 = 100_000;
/// Default of `GRAPHQL_MAX_DEPTH`.
pub const DEFAULT_MAX_DEPTH: usize = 10;
/// What an introspection subtree may cost: about three standard introspection queries.
pub const MAX_INTROSPECTION_COST: u64 = 5_000_000;
/// How deep an introspection subtree may nest (the standard query nests 13 levels).
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// Largest answer of an operation that introspects: the standard introspection query answers
/// about a tenth of it, and fragments priced once may be spread under many aliases.
pub const MAX_INTROSPECTION_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest chain of fragments spreading one another (each link is a level of recursion here).
pub const MAX_FRAGMENT_CHAIN: usize = 64;

/// `trainingData` returns this many points unless asked for another `first`.
pub const TRAINING_PAGE_DEFAULT: u64 = 1_000;
/// The largest `first` of `trainingData`.
pub const TRAINING_PAGE_MAX: u64 = 10_000;
/// The largest `first` of `seriesList`.
pub const SERIES_PAGE_MAX: u64 = 100;
/// What `models` counts as (a series' versions are not paged; few series keep more).
pub const MODELS_WEIGHT: u64 = 10;

/// The limits of one request, from configuration.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Largest price of an operation outside introspection (`GRAPHQL_MAX_COST`).
    pub max_cost: u64,
    /// Deepest nesting outside introspection (`GRAPHQL_MAX_DEPTH`).
    pub max_depth: usize,
    /// Whether `__schema` and `__type` are answered (`GRAPHQL_INTROSPECTION`).
    pub introspection: bool,
    /// Largest answer, estimated as JSON bytes (`GRAPHQL_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// Longest a query or mutation may run (`GRAPHQL_TIMEOUT_SECS`).
    pub timeout: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_cost: DEFAULT_MAX_COST,
            max_depth: DEFAULT_MAX_DEPTH,
            introspection: true,
            max_response_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A GraphQL error with `extensions.code`.
pub fn coded(message: impl Into<String>, pos: Option<Pos>, code: &str) -> ServerError {
    let mut error = ServerError::new(message, pos);
    let mut extensions = error.extensions.take().unwrap_or_default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// `error` with `code` unless it already has one.
fn with_code(mut error: ServerError, code: &str) -> ServerError {
    give_code(&mut error, code);
    error
}

/// Gives `error` `code` unless it already has one.
fn give_code(error: &mut ServerError, code: &str) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    if !has_code {
        let mut extensions = error.extensions.take().unwrap_or_default();
        extensions.set("code", code);
        error.extensions = Some(extensions);
    }
}

/// The extension factory the schema is built with.
pub struct Guard {
    pub limits: Arc<QueryLimits>,
    pub documents: Arc<super::documents::DocumentCache>,
}

impl Guard {
    pub fn new(limits: &QueryLimits) -> Self {
        Self {
            limits: Arc::new(limits.clone()),
            documents: Default::default(),
        }
    }
}

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension(
            self.limits.clone(),
            self.documents.clone(),
            Default::default(),
            Default::default(),
        ))
    }
}

struct GuardExtension(
    Arc<QueryLimits>,
    Arc<super::documents::DocumentCache>,
    /// Whether the request introspects (its answer is held to the introspection bound).
    std::sync::atomic::AtomicBool,
    /// Its document's validation: already passed, or to remember once it passes.
    std::sync::Mutex<Validation>,
);

/// What `GuardExtension::validation` does with a request's document (`DocumentCache`).
#[derive(Default)]
enum Validation {
    /// Run it (a rendering of a live result, say).
    #[default]
    Run,
    /// It passed before: the result of then.
    Passed(ValidationResult),
    /// Run it, and remember a success for this text and operation.
    Remember(String, Option<String>),
}

#[async_trait::async_trait]
impl Extension for GuardExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let limits = &self.0;
        let Ok(mut response) = tokio::time::timeout(limits.timeout, next.run(ctx)).await else {
            return timed_out(limits);
        };
        // The executor's own errors on a request's values (a variable not given, say) carry no
        // code: they are the client's.
        for error in &mut response.errors {
            give_code(error, "BAD_USER_INPUT");
        }
        let introspects = self.2.load(std::sync::atomic::Ordering::Relaxed);
        bounded(limits, introspects, response)
    }

    /// Before async-graphql's own parse step, whose recursion check also walks every fragment
    /// spread anew (a bomb costs it minutes): the document is parsed here (and kept for the
    /// later steps), then priced.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let read_only = request
            .data
            .get(&TypeId::of::<Access>())
            .and_then(|access| access.downcast_ref::<Access>())
            .or_else(|| ctx.data_opt::<Access>())
            == Some(&Access::ReadOnly);
        let variables = request.variables.clone();
        // A live result rendered for direct subscribers is no operation of a client's.
        let rendering = request
            .data
            .get(&TypeId::of::<super::subscriptions::RenderOne>())
            .is_some();
        let validated = self
            .1
            .parse(&mut request)
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
        *self.3.lock().unwrap_or_else(|e| e.into_inner()) = match validated {
            Validated::Passed(result) => Validation::Passed(result),
            Validated::Unknown => {
                Validation::Remember(request.query.clone(), request.operation_name.clone())
            }
            Validated::Never => Validation::Run,
        };
        let document = request
            .parsed_query()
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
        if read_only && has_mutation(document) {
            return Err(coded(READ_ONLY_MESSAGE, None, "FORBIDDEN"));
        }
        match check(document, &variables, &self.0) {
            Ok(introspects) => self
                .2
                .store(introspects, std::sync::atomic::Ordering::Relaxed),
            Err(refused) => {
                count_refusal(&refused);
                return Err(refused);
            }
        }
        for counter in operation_counters(document)
            .into_iter()
            .filter(|_| !rendering)
        {
            counter.increment(1);
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let validation = std::mem::take(&mut *self.3.lock().unwrap_or_else(|e| e.into_inner()));
        if let Validation::Passed(result) = validation {
            return Ok(result);
        }
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED"))
                .collect::<Vec<_>>()
        })?;
        if let Validation::Remember(query, operation) = validation {
            self.1.validated(&query, operation, result);
        }
        Ok(result)
    }
}

/// The answer to a request that ran past `limits.timeout`.
pub(super) fn timed_out(limits: &QueryLimits) -> Response {
    Response::from_errors(vec![coded(
        format!(
            "The request did not finish within {} s",
            limits.timeout.as_secs_f64()
        ),
        None,
        "TIMEOUT",
    )])
}

/// `response`, unless it is larger than `limits` allow (or, when the request `introspects`,
/// than an introspection answer may be): then an error saying so.
pub(super) fn bounded(limits: &QueryLimits, introspects: bool, response: Response) -> Response {
    let size = json_size(&response.data);
    if introspects && size > MAX_INTROSPECTION_RESPONSE_BYTES {
        return Response::from_errors(vec![coded(
            format!(
                "The introspection answer would be about {size} bytes, over the limit of \
                 {MAX_INTROSPECTION_RESPONSE_BYTES}: ask for the schema once"
            ),
            None,
            "RESPONSE_TOO_LARGE",
        )]);
    }
    if size > limits.max_response_bytes {
        return Response::from_errors(vec![coded(
            format!(
                "The answer would be about {size} bytes, over the limit of {} \
                 (GRAPHQL_MAX_RESPONSE_BYTES): ask for smaller pages",
                limits.max_response_bytes
            ),
            None,
            "RESPONSE_TOO_LARGE",
        )]);
    }
    response
}

/// `anomaly_graphql_operations_total` of each operation in `document` (one, unless a client
/// sends several). The counters are registered once: a labelled counter looked up per request
/// hashes its key every time.
fn operation_counters(document: &ExecutableDocument) -> Vec<&'static metrics::Counter> {
    let counter = |op: &Positioned<OperationDefinition>| operation_counter(op.node.ty);
    match &document.operations {
        DocumentOperations::Single(operation) => vec![counter(operation)],
        DocumentOperations::Multiple(operations) => operations.values().map(counter).collect(),
    }
}

/// `anomaly_graphql_operations_total` of one kind of operation.
pub(super) fn operation_counter(kind: OperationType) -> &'static metrics::Counter {
    struct Counters {
        query: metrics::Counter,
        mutation: metrics::Counter,
        subscription: metrics::Counter,
    }
    static COUNTERS: std::sync::LazyLock<Counters> = std::sync::LazyLock::new(|| {
        let of = |kind: &'static str| metrics::counter!("anomaly_graphql_operations_total", "type" => kind);
        Counters {
            query: of("query"),
            mutation: of("mutation"),
            subscription: of("subscription"),
        }
    });
    match kind {
        OperationType::Query => &COUNTERS.query,
        OperationType::Mutation => &COUNTERS.mutation,
        OperationType::Subscription => &COUNTERS.subscription,
    }
}

fn count_refusal(error: &ServerError) {
    let code = match error.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(Value::String(code)) => code.clone(),
        _ => "OTHER".to_owned(),
    };
    metrics::counter!("anomaly_graphql_refused_total", "code" => code).increment(1);
}

fn has_mutation(document: &ExecutableDocument) -> bool {
    let mutation = |op: &Positioned<OperationDefinition>| op.node.ty == OperationType::Mutation;
    match &document.operations {
        DocumentOperations::Single(operation) => mutation(operation),
        DocumentOperations::Multiple(operations) => operations.values().any(mutation),
    }
}

/// Refuses `document` when one of its operations costs or nests more than `limits` allow; else
/// says whether one of them introspects.
pub fn check(
    document: &ExecutableDocument,
    variables: &Variables,
    limits: &QueryLimits,
) -> ServerResult<bool> {
    let mut introspects = false;
    let mut pricer = Pricer {
        fragments: &document.fragments,
        variables,
        memo: HashMap::new(),
        open: Vec::new(),
    };
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values().collect(),
    };
    for operation in operations {
        let pos = operation.pos;
        let price = pricer.selection_set(&operation.node.selection_set.node, Mode::Normal)?;
        if price.normal.depth > limits.max_depth {
            return Err(coded(
                format!(
                    "The query nests {} levels, more than the {} allowed (GRAPHQL_MAX_DEPTH)",
                    price.normal.depth, limits.max_depth
                ),
                Some(pos),
                "QUERY_TOO_DEEP",
            ));
        }
        if price.normal.cost > limits.max_cost {
            return Err(coded(
                format!(
                    "The query would cost {}, more than the {} allowed (GRAPHQL_MAX_COST): every \
                     field counts 1, times the page size of each list it is in",
                    display(price.normal.cost),
                    limits.max_cost
                ),
                Some(pos),
                "QUERY_TOO_COSTLY",
            ));
        }
        if !limits.introspection && price.introspection.cost > 0 {
            return Err(coded(
                "Introspection is disabled on this server (GRAPHQL_INTROSPECTION)",
                Some(pos),
                "INTROSPECTION_DISABLED",
            ));
        }
        if price.introspection.depth > MAX_INTROSPECTION_DEPTH
            || price.introspection.cost > MAX_INTROSPECTION_COST
        {
            return Err(coded(
                format!(
                    "The introspection would cost {} at depth {}, more than the {} at depth {} \
                     allowed",
                    display(price.introspection.cost),
                    price.introspection.depth,
                    MAX_INTROSPECTION_COST,
                    MAX_INTROSPECTION_DEPTH
                ),
                Some(pos),
                "QUERY_TOO_COSTLY",
            ));
        }
        introspects |= price.introspection.cost > 0;
    }
    Ok(introspects)
}

fn display(cost: u64) -> String {
    if cost == u64::MAX {
        "more than 2^64".into()
    } else {
        cost.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Normal,
    Introspection,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    cost: u64,
    depth: usize,
}

/// What a selection set costs, outside and inside introspection.
#[derive(Debug, Clone, Copy, Default)]
struct Price {
    normal: Tally,
    introspection: Tally,
}

impl Price {
    fn add(&mut self, other: Price) {
        self.normal.cost = self.normal.cost.saturating_add(other.normal.cost);
        self.normal.depth = self.normal.depth.max(other.normal.depth);
        self.introspection.cost = self
            .introspection
            .cost
            .saturating_add(other.introspection.cost);
        self.introspection.depth = self.introspection.depth.max(other.introspection.depth);
    }
}

struct Pricer<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    variables: &'a Variables,
    memo: HashMap<(Name, Mode), Price>,
    /// Fragments being priced, to refuse a cycle (validation would, but it runs later).
    open: Vec<Name>,
}

impl Pricer<'_> {
    fn selection_set(&mut self, set: &SelectionSet, mode: Mode) -> ServerResult<Price> {
        let mut total = Price::default();
        for selection in &set.items {
            let price = match &selection.node {
                Selection::Field(field) => self.field(&field.node, mode)?,
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, mode)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, spread.pos, mode)?
                }
            };
            total.add(price);
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &Name, pos: Pos, mode: Mode) -> ServerResult<Price> {
        if let Some(price) = self.memo.get(&(name.clone(), mode)) {
            return Ok(*price);
        }
        if self.open.contains(name) {
            return Err(coded(
                format!("Fragment \"{name}\" spreads itself"),
                Some(pos),
                "GRAPHQL_VALIDATION_FAILED",
            ));
        }
        if self.open.len() >= MAX_FRAGMENT_CHAIN {
            return Err(coded(
                format!("Fragments spread one another more than {MAX_FRAGMENT_CHAIN} deep"),
                Some(pos),
                "QUERY_TOO_DEEP",
            ));
        }
        // An unknown fragment is validation's to report.
        let Some(fragment) = self.fragments.get(name) else {
            return Ok(Price::default());
        };
        self.open.push(name.clone());
        let price = self.selection_set(&fragment.node.selection_set.node, mode);
        self.open.pop();
        let price = price?;
        self.memo.insert((name.clone(), mode), price);
        Ok(price)
    }

    fn field(
        &mut self,
        field: &async_graphql::parser::types::Field,
        mode: Mode,
    ) -> ServerResult<Price> {
        let name = field.name.node.as_str();
        let inner_mode = if matches!(name, "__schema" | "__type") {
            Mode::Introspection
        } else {
            mode
        };
        let children = self.selection_set(&field.selection_set.node, inner_mode)?;
        let weight = match inner_mode {
            Mode::Normal => self.list_weight(field),
            Mode::Introspection => introspection_weight(name),
        };
        let scale = |tally: Tally| Tally {
            cost: tally.cost.saturating_mul(weight),
            depth: tally.depth,
        };
        let mut price = Price {
            normal: scale(children.normal),
            introspection: scale(children.introspection),
        };
        let own = match inner_mode {
            Mode::Normal => &mut price.normal,
            Mode::Introspection => &mut price.introspection,
        };
        own.cost = own.cost.saturating_add(1);
        own.depth += 1;
        Ok(price)
    }

    /// How many items a field returns at most (1 for a field that is not a list).
    fn list_weight(&self, field: &async_graphql::parser::types::Field) -> u64 {
        let argument = |wanted: &str| {
            field
                .arguments
                .iter()
                .find(|(name, _)| name.node == wanted)
                .and_then(|(_, value)| {
                    value
                        .node
                        .clone()
                        .into_const_with(|var| self.variables.get(&var).cloned().ok_or(()))
                        .ok()
                })
        };
        let first = || match argument("first") {
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        match field.name.node.as_str() {
            "seriesList" | "anomalies" => first().unwrap_or(20).min(SERIES_PAGE_MAX),
            "recentPredictions" => first().unwrap_or(50).min(SERIES_PAGE_MAX),
            "trainingData" => first()
                .unwrap_or(TRAINING_PAGE_DEFAULT)
                .min(TRAINING_PAGE_MAX),
            "models" => MODELS_WEIGHT,
            "predictBatch" => match argument("points") {
                Some(Value::List(points)) => points.len() as u64,
                _ => 1,
            },
            "modelUsage" | "instances" | "webhooks" => 100,
            "webhookDeliveries" => first()
                .unwrap_or(20)
                .min(crate::webhooks::endpoints::MAX_PAGE),
            _ => 1,
        }
    }
}

/// How many items an introspection field returns at most, for this schema (a test checks these
/// against `schema.graphql`).
fn introspection_weight(name: &str) -> u64 {
    match name {
        "types" => 60,
        "fields" | "inputFields" | "enumValues" => 20,
        "args" => 10,
        "interfaces" | "possibleTypes" => 5,
        "directives" => 10,
        "locations" => 20,
        _ => 1,
    }
}

/// About how many bytes `value` takes as JSON.
fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Boolean(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => s.len() + 2,
        Value::Enum(e) => e.len() + 2,
        Value::Binary(b) => b.len() * 4 / 3 + 4,
        Value::List(items) => items.iter().map(|v| json_size(v) + 1).sum::<usize>() + 2,
        Value::Object(fields) => {
            fields
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
                + 2
        }
    }
}

#[cfg(test)]
mod tests;
