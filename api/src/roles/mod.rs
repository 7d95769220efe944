//! How the roles of the distributed deployment talk to each other over HTTP: the trainer's and
//! predictor's internal routes (`internal`), the gateway's clients of them with series ownership
//! (`remote`), and a predictor's membership of the `points` consumer group (`points_member`).
//! Which role runs where is decided by the composition root, `crate::process`.

pub mod internal;
pub(crate) mod points_member;
pub mod remote;

use axum::Router;

/// `router` with `/metrics`, its requests counted, and a span per request that continues the
/// caller's trace (the roles' internal routes need no token: they are not exposed).
pub fn observed(router: Router) -> Router {
    crate::prometheus::handle();
    router
        .merge(crate::prometheus::routes())
        .layer(crate::routed::RoutedLayer::new(None))
}
