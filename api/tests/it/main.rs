//! Integration tests of the gateway: the app is started as users start it (`process::run`) on a
//! port-0 listener with its own SQLite file, and driven over HTTP.

mod alert_history;
mod bad_input;
mod body_limits;
mod broker_restart;
mod crash_safety;
mod dashboard;
mod dataloader;
mod demo_scenario;
mod distributed;
mod distributed_faults;
mod distributed_subscriptions;
mod edge;
mod graphql;
mod hostile;
mod monitoring_stack;
mod online_state;
mod openapi;
mod predict_batch;
mod predictor_batches;
mod predictor_failover;
mod prepared_predict;
mod probes;
mod processes;
mod prometheus;
mod remote_write;
mod serve_on_real_backends;
mod subscriptions;
mod support;
mod traces;
mod unreachable_roles;
mod webhooks;
mod whole_series;
mod ws_client;
mod ws_rules;
