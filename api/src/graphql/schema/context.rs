//! Typed access to what every schema is built with (`schema_with`): resolvers ask the context for
//! a service by name (`ctx.services()`, `ctx.webhooks()`, ...) instead of looking a type up. The
//! one lookup that can miss lives here, and a miss is a wiring bug (a schema built without the
//! data its fields need), never a request's fault: it panics saying so.

use std::any::{Any, type_name};
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;

use super::loaders::{ModelsLoader, TrainingDataLoader};
use crate::state::AppState;

/// What a resolver may take from its context.
pub trait ContextExt<'a> {
    /// The gateway's services: the stores, training, scoring, metrics and the live feed.
    fn services(&self) -> &'a AppState;
    /// The webhook endpoints the webhook fields manage.
    fn webhooks(&self) -> &'a crate::webhooks::Endpoints;
    /// Every version of many series, in one query per batch.
    fn models_loader(&self) -> &'a DataLoader<ModelsLoader>;
    /// The training points of many versions, in one query per batch.
    fn training_data_loader(&self) -> &'a DataLoader<TrainingDataLoader>;
    /// How many series `health` ranks by use (`HEALTH_TOP_SERIES`).
    fn health_top_series(&self) -> usize;
}

impl<'a> ContextExt<'a> for Context<'a> {
    fn services(&self) -> &'a AppState {
        wired(self)
    }

    fn webhooks(&self) -> &'a crate::webhooks::Endpoints {
        wired::<Arc<crate::webhooks::Endpoints>>(self)
    }

    fn models_loader(&self) -> &'a DataLoader<ModelsLoader> {
        wired(self)
    }

    fn training_data_loader(&self) -> &'a DataLoader<TrainingDataLoader> {
        wired(self)
    }

    fn health_top_series(&self) -> usize {
        self.services().config.health_top_series
    }
}

/// Data `schema_with` gives every schema.
fn wired<'a, T: Any + Send + Sync>(ctx: &Context<'a>) -> &'a T {
    ctx.data_opt::<T>().unwrap_or_else(|| {
        panic!(
            "GraphQL wiring bug: the schema was built without {} (every schema gets it in \
             graphql::schema::schema_with)",
            type_name::<T>()
        )
    })
}
