//! Everything behind the gateway: the detectors, the trainer and predictor roles, the two
//! consumers, and the ports to the outside world (event bus, metrics store, model/data store),
//! each a trait with one implementation per backend.

pub mod bus;
pub mod cause;
pub mod consumers;
pub mod detector;
pub mod domain;
pub mod events;
pub mod fanout;
pub mod heartbeat;
pub mod live;
pub mod model;
pub mod nab;
pub mod partitioner;
pub mod predictor;
pub mod stats;
pub mod store;
pub mod trace_context;
pub mod trainer;

#[cfg(test)]
mod testing;
