//! The `predict` mutation, prepared: the hot GraphQL operation run without async-graphql's
//! executor. Clients send the same `predict` document over and over; the executor spends on each
//! (the document's clone, extension and resolver futures, `IndexMap`s, the value tree) about as
//! much CPU as the predict itself. A document that async-graphql has run once without an error
//! and that is one plain `predict` (no fragments, directives or nested objects; arguments as
//! literals or declared variables) gets a plan: its response keys and fields, and where its two
//! arguments come from. Later requests of that text run the plan: the same resolver body
//! (`mutation::predict_field`), the same timeout, size bound and operation counter as the guard,
//! and an answer a test compares with the executor's byte for byte. Anything the plan does not
//! expect (another operation name, a variable missing, of another shape or undeclared, a
//! read-only token) goes to async-graphql as before, so every error it gives is its own.

use std::sync::{Arc, LazyLock};

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
    Selection, VariableDefinition,
};
use async_graphql::{Name, PathSegment, Pos, Request, Response, Value};
use async_graphql_value::Value as DocumentValue;

use super::documents::{ByText, MAX_TEXT_BYTES};
use super::guard::{self, QueryLimits};
use super::mutation::predict_field;
use super::types::{PointInput, Prediction, PredictionField};
use crate::auth::Access;
use crate::state::AppState;

/// The prepared operations of one schema, with what they run against.
pub struct Prepared {
    state: AppState,
    limits: Arc<QueryLimits>,
    /// By document text: its plan, or `None` for a document that is no plain `predict`.
    plans: ByText<Option<Arc<Plan>>>,
}

/// What is known of a request's document (`Prepared::lookup`).
pub enum Lookup {
    /// A plain `predict`: run it with `Prepared::run`.
    Plan(Arc<Plan>),
    /// Not seen yet: run it through the schema, then tell `Prepared::learn` how it went.
    Unknown,
    /// Not one this module runs (or not for this request): run it through the schema.
    Schema,
}

impl Prepared {
    pub fn new(state: AppState, limits: &QueryLimits) -> Self {
        Self {
            state,
            limits: Arc::new(limits.clone()),
            plans: ByText::default(),
        }
    }

    /// What to do with `request`, made with `access`.
    pub fn lookup(&self, request: &Request, access: Access) -> Lookup {
        // The read-only token's refusal, persisted-query extensions and uploads are the
        // schema's.
        if access != Access::Full || !request.extensions.is_empty() || !request.uploads.is_empty() {
            return Lookup::Schema;
        }
        match self.plans.lock().get(&request.query) {
            Some(Some(plan)) => Lookup::Plan(plan.clone()),
            Some(None) => Lookup::Schema,
            None if request.query.len() > MAX_TEXT_BYTES => Lookup::Schema,
            None => Lookup::Unknown,
        }
    }

    /// Keeps what `query` is, after async-graphql ran it: a plan when it answered without an
    /// error (so the document passed validation) and is a plain `predict`.
    pub fn learn(&self, query: String, answered: &Response) {
        if !answered.errors.is_empty() || query.len() > MAX_TEXT_BYTES {
            return;
        }
        let plan = async_graphql::parser::parse_query(&query)
            .ok()
            .and_then(|document| Plan::of(&document))
            .map(Arc::new);
        self.plans.keep(query, plan);
    }

    /// Runs `plan` for `request`; `None` (before anything ran) when the request is not the one
    /// the plan was made for: its operation name or variables differ.
    pub async fn run(&self, plan: &Plan, request: &Request) -> Option<Response> {
        let (series_id, point) = plan.arguments(request)?;
        guard::operation_counter(OperationType::Mutation).increment(1);
        static PREPARED: LazyLock<metrics::Counter> =
            LazyLock::new(|| metrics::counter!("anomaly_graphql_prepared_total"));
        PREPARED.increment(1);
        let predicted = tokio::time::timeout(
            self.limits.timeout,
            predict_field(&self.state, series_id, point),
        )
        .await;
        let response = match predicted {
            Err(_) => return Some(guard::timed_out(&self.limits)),
            Ok(Ok(prediction)) => Response::new(plan.render(&prediction)),
            // As the executor reports a field's error: at the field, under its response key
            // (`predict` is non-null, so `data` is null).
            Ok(Err(error)) => Response::from_errors(vec![
                error
                    .into_server_error(plan.at)
                    .with_path(vec![PathSegment::Field(plan.key.to_string())]),
            ]),
        };
        Some(guard::bounded(&self.limits, false, response))
    }
}

/// Where an argument's value comes from.
#[derive(Debug)]
enum Source<T> {
    Literal(T),
    /// A variable declared with the argument's non-null type.
    Variable(Name),
}

/// A plain `predict` document: how to run and answer it.
#[derive(Debug)]
pub struct Plan {
    /// The operation's name, when it has one (a request may name it or not).
    operation: Option<Name>,
    /// The variables it declares, every one used by an argument.
    declared: Vec<Name>,
    /// `predict`'s response key, and where it stands in the document.
    key: Name,
    at: Pos,
    series_id: Source<String>,
    point: Source<PointInput>,
    /// The selected fields of `Prediction`, by response key, in order.
    fields: Vec<(Name, PredictionField)>,
}

impl Plan {
    /// The plan of `document`, when it is one operation selecting only `predict`, its fields
    /// plain scalars, with no fragment or directive anywhere.
    fn of(document: &ExecutableDocument) -> Option<Self> {
        if !document.fragments.is_empty() {
            return None;
        }
        let (operation, definition) = match &document.operations {
            DocumentOperations::Single(definition) => (None, &definition.node),
            DocumentOperations::Multiple(operations) if operations.len() == 1 => {
                let (name, definition) = operations.iter().next()?;
                (Some(name.clone()), &definition.node)
            }
            DocumentOperations::Multiple(_) => return None,
        };
        let OperationDefinition {
            ty: OperationType::Mutation,
            variable_definitions,
            directives,
            selection_set,
        } = definition
        else {
            return None;
        };
        let [selection] = selection_set.node.items.as_slice() else {
            return None;
        };
        let Selection::Field(field) = &selection.node else {
            return None;
        };
        let predict = &field.node;
        if !directives.is_empty()
            || !predict.directives.is_empty()
            || predict.name.node != "predict"
        {
            return None;
        }
        let declared = |name: &Name, type_name: &str| {
            variable_definitions
                .iter()
                .any(|v| v.node.name.node == *name && plain_non_null(&v.node, type_name))
        };
        let (mut series_id, mut point) = (None, None);
        for (name, value) in &predict.arguments {
            match (name.node.as_str(), &value.node) {
                ("seriesId", DocumentValue::String(literal)) if series_id.is_none() => {
                    series_id = Some(Source::Literal(literal.clone()));
                }
                ("seriesId", DocumentValue::Variable(v))
                    if series_id.is_none() && declared(v, "String") =>
                {
                    series_id = Some(Source::Variable(v.clone()));
                }
                ("point", DocumentValue::Variable(v))
                    if point.is_none() && declared(v, "PointInput") =>
                {
                    point = Some(Source::Variable(v.clone()));
                }
                ("point", DocumentValue::Object(fields)) if point.is_none() => {
                    let literal = fields
                        .iter()
                        .map(|(name, value)| Some((name.clone(), value.clone().into_const()?)))
                        .collect::<Option<IndexMap<_, _>>>()?;
                    let literal = point_input(&literal)?;
                    point = Some(Source::Literal(literal));
                }
                _ => return None,
            }
        }
        let used = usize::from(matches!(series_id, Some(Source::Variable(_))))
            + usize::from(matches!(point, Some(Source::Variable(_))));
        let declared: Vec<Name> = variable_definitions
            .iter()
            .map(|v| v.node.name.node.clone())
            .collect();
        if used != declared.len() {
            return None;
        }
        let mut fields: Vec<(Name, PredictionField)> = Vec::new();
        for selection in &predict.selection_set.node.items {
            let Selection::Field(field) = &selection.node else {
                return None;
            };
            let field = &field.node;
            let plain = field.arguments.is_empty()
                && field.directives.is_empty()
                && field.selection_set.node.items.is_empty();
            let key = field.response_key().node.clone();
            let kind = PredictionField::named(&field.name.node).filter(|_| plain)?;
            // A key selected twice is merged by the executor: left to it.
            if fields.iter().any(|(k, _)| *k == key) {
                return None;
            }
            fields.push((key, kind));
        }
        if fields.is_empty() {
            return None;
        }
        Some(Self {
            operation,
            declared,
            key: predict.response_key().node.clone(),
            at: field.pos,
            series_id: series_id?,
            point: point?,
            fields,
        })
    }

    /// `request`'s arguments, when it is a request this plan answers as the executor would.
    fn arguments<'r>(&'r self, request: &'r Request) -> Option<(&'r str, PointInput)> {
        let named_as_planned = match (&request.operation_name, &self.operation) {
            (None, _) => true,
            (Some(asked), Some(name)) => asked.as_str() == name.as_str(),
            (Some(_), None) => false,
        };
        let variables = &request.variables;
        let only_declared = variables.len() == self.declared.len()
            && variables.keys().all(|k| self.declared.contains(k));
        if !named_as_planned || !only_declared {
            return None;
        }
        let series_id = match &self.series_id {
            Source::Literal(literal) => literal.as_str(),
            Source::Variable(name) => match variables.get(name)? {
                Value::String(value) => value.as_str(),
                _ => return None,
            },
        };
        let point = match &self.point {
            Source::Literal(point) => *point,
            Source::Variable(name) => match variables.get(name)? {
                Value::Object(fields) => point_input(fields)?,
                _ => return None,
            },
        };
        Some((series_id, point))
    }

    /// The answer's `data`.
    fn render(&self, prediction: &Prediction) -> Value {
        let fields = self
            .fields
            .iter()
            .map(|(key, field)| (key.clone(), prediction.field(*field)))
            .collect();
        Value::Object(
            [(self.key.clone(), Value::Object(fields))]
                .into_iter()
                .collect(),
        )
    }
}

/// A `PointInput` from an object holding exactly its two fields, as numbers the executor
/// accepts (an integer `timestamp`, any number `value`).
fn point_input(fields: &IndexMap<Name, Value>) -> Option<PointInput> {
    if fields.len() != 2 {
        return None;
    }
    let number = |name: &str| match fields.get(name) {
        Some(Value::Number(number)) => Some(number.clone()),
        _ => None,
    };
    Some(PointInput {
        timestamp: number("timestamp")?.as_i64()?,
        value: number("value")?.as_f64()?,
    })
}

/// Whether `variable` is declared as `type_name!`, with no default or directive.
fn plain_non_null(variable: &VariableDefinition, type_name: &str) -> bool {
    let ty = &variable.var_type.node;
    !ty.nullable
        && matches!(&ty.base, BaseType::Named(name) if name.as_str() == type_name)
        && variable.default_value.is_none()
        && variable.directives.is_empty()
}

#[cfg(test)]
mod tests;
