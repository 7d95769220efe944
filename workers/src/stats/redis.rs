//! The metrics store on Redis, shared by every metrics-consumer instance and read by every gateway.
//! Each record (a metric, a batch of predictions) is one Lua script, so it is counted whole or not
//! at all, and a redelivered copy (same id) is recognised and skipped. Keys live under a prefix
//! (`anomaly:` in production, a fresh one per test).
//!
//! Keys: `seen:<id>` (expiring), `latency:<kind>` (newest `LATENCY_WINDOW` samples),
//! `throughput:<kind>` (hash minute → count, pruned past `THROUGHPUT_MINUTES`), `series` (set of
//! trained series), `usage` (hash series → predictions) and `usage:ranked` (the same counts as a
//! sorted set, so the most used series are read without reading them all; built from `usage` the
//! first time a script finds it missing), `heartbeats` (hash role/instance → JSON).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::latency::{LatencySummary, minute_of, per_minute};
use super::{
    HEARTBEAT_TTL_MS, LATENCY_WINDOW, StatsError, StatsSnapshot, StatsStore, THROUGHPUT_MINUTES,
    sort_instances,
};
use crate::events::{Heartbeat, InferenceBatch, Metric, MetricKind};

/// How long a metric id is remembered for spotting redelivered copies.
const SEEN_TTL_SECS: u64 = 24 * 3600;

/// Lua shared by the scripts:
/// - `ranked_usage`: the key of the ranked usage set, built from the `usage` hash the first time
///   it is missing (a store written before the set existed);
/// - `count_uses`: adds `n` predictions of `series` to both the hash and the ranked set;
/// - `count_operations`: adds `n` operations of `kind` to the minute `minute`, dropping the
///   minutes older than the `kept` newest.
const SHARED: &str = r#"
local function ranked_usage(p)
  local ranked = p .. 'usage:ranked'
  if redis.call('EXISTS', ranked) == 0 then
    local usage = redis.call('HGETALL', p .. 'usage')
    for i = 1, #usage, 2 do
      redis.call('ZADD', ranked, usage[i + 1], usage[i])
    end
  end
  return ranked
end
local function count_uses(p, series, n)
  local ranked = ranked_usage(p)
  redis.call('HINCRBY', p .. 'usage', series, n)
  redis.call('ZINCRBY', ranked, n, series)
end
local function count_operations(p, kind, minute, n, kept)
  local throughput = p .. 'throughput:' .. kind
  redis.call('HINCRBY', throughput, minute, n)
  local oldest = tonumber(minute) - tonumber(kept) + 1
  for _, known in ipairs(redis.call('HKEYS', throughput)) do
    if tonumber(known) < oldest then redis.call('HDEL', throughput, known) end
  end
end
"#;

const RECORD: &str = r#"
local p = ARGV[1]
if not redis.call('SET', p .. 'seen:' .. ARGV[2], '1', 'NX', 'EX', ARGV[9]) then
  return 0
end
local kind = ARGV[3]
local latency = p .. 'latency:' .. kind
redis.call('LPUSH', latency, ARGV[5])
redis.call('LTRIM', latency, 0, tonumber(ARGV[7]) - 1)
count_operations(p, kind, ARGV[6], 1, ARGV[8])
if kind == 'training' then
  redis.call('SADD', p .. 'series', ARGV[4])
else
  count_uses(p, ARGV[4], 1)
end
return 1
"#;

/// A batch of predictions: ARGV = prefix, id, minute, window, minutes kept, seen TTL, count, the
/// number of latencies, the latencies, then series/uses pairs.
const RECORD_INFERENCES: &str = r#"
local p = ARGV[1]
if not redis.call('SET', p .. 'seen:' .. ARGV[2], '1', 'NX', 'EX', ARGV[6]) then
  return 0
end
local latencies = tonumber(ARGV[8])
if latencies > 0 then
  local latency = p .. 'latency:inference'
  redis.call('LPUSH', latency, unpack(ARGV, 9, 8 + latencies))
  redis.call('LTRIM', latency, 0, tonumber(ARGV[4]) - 1)
end
count_operations(p, 'inference', ARGV[3], ARGV[7], ARGV[5])
for i = 9 + latencies, #ARGV, 2 do
  count_uses(p, ARGV[i], ARGV[i + 1])
end
return 1
"#;

/// The ARGV[2] most used series as series/score pairs: those used more than the last one taken,
/// then, of those used exactly as much, the smaller ids (a sorted set orders equal scores by
/// member).
const MOST_USED: &str = r#"
local ranked = ranked_usage(ARGV[1])
local top = tonumber(ARGV[2])
if top <= 0 then return {} end
if redis.call('ZCARD', ranked) <= top then
  return redis.call('ZRANGE', ranked, 0, -1, 'WITHSCORES')
end
local cut = redis.call('ZREVRANGE', ranked, top - 1, top - 1, 'WITHSCORES')[2]
local most = redis.call('ZRANGEBYSCORE', ranked, '(' .. cut, '+inf', 'WITHSCORES')
local tied = redis.call('ZRANGEBYSCORE', ranked, cut, cut, 'WITHSCORES', 'LIMIT', 0, top - #most / 2)
for i = 1, #tied do most[#most + 1] = tied[i] end
return most
"#;

const HEARTBEAT: &str = r#"
local key = ARGV[1] .. 'heartbeats'
local known = redis.call('HGET', key, ARGV[2])
if known and cjson.decode(known)['at_ms'] > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', key, ARGV[2], ARGV[3])
return 1
"#;

#[derive(Clone)]
pub struct RedisStats {
    connection: ConnectionManager,
    prefix: String,
    record: redis::Script,
    record_inferences: redis::Script,
    most_used: redis::Script,
    heartbeat: redis::Script,
}

fn unavailable(err: redis::RedisError) -> StatsError {
    StatsError::Unavailable(crate::cause::Cause::new(err))
}

impl RedisStats {
    /// Connects to `url` (`redis://host:port[/db]`); keys go under `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StatsError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            record: redis::Script::new(&format!("{SHARED}{RECORD}")),
            record_inferences: redis::Script::new(&format!("{SHARED}{RECORD_INFERENCES}")),
            most_used: redis::Script::new(&format!("{SHARED}{MOST_USED}")),
            heartbeat: redis::Script::new(HEARTBEAT),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Training => "training",
        MetricKind::Inference => "inference",
    }
}

fn throughput(buckets: HashMap<i64, u64>, now_minute: i64) -> f64 {
    let since = now_minute - THROUGHPUT_MINUTES + 1;
    let mut live: Vec<(i64, u64)> = buckets.into_iter().filter(|(m, _)| *m >= since).collect();
    live.sort_unstable();
    per_minute(live, now_minute)
}

#[async_trait]
impl StatsStore for RedisStats {
    async fn record(&self, metric: &Metric) -> Result<(), StatsError> {
        let mut connection = self.connection.clone();
        let _: i64 = self
            .record
            .arg(&self.prefix)
            .arg(metric.id.to_string())
            .arg(kind_name(metric.kind))
            .arg(metric.series_id.as_str())
            .arg(metric.latency_ms)
            .arg(minute_of(metric.at_ms))
            .arg(LATENCY_WINDOW)
            .arg(THROUGHPUT_MINUTES)
            .arg(SEEN_TTL_SECS)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn record_inferences(&self, batch: &InferenceBatch) -> Result<(), StatsError> {
        let mut connection = self.connection.clone();
        // Redis keeps the newest LATENCY_WINDOW anyway: only those travel.
        let latencies =
            &batch.latencies_ms[batch.latencies_ms.len().saturating_sub(LATENCY_WINDOW)..];
        let mut invocation = self.record_inferences.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(batch.id.to_string())
            .arg(minute_of(batch.at_ms))
            .arg(LATENCY_WINDOW)
            .arg(THROUGHPUT_MINUTES)
            .arg(SEEN_TTL_SECS)
            .arg(batch.predictions())
            .arg(latencies.len())
            .arg(latencies);
        for (series, uses) in &batch.uses {
            invocation.arg(series.as_str()).arg(*uses);
        }
        let _: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn record_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), StatsError> {
        let mut connection = self.connection.clone();
        let json = serde_json::to_string(heartbeat).map_err(|e| {
            StatsError::Unavailable(crate::cause::Cause::context("encoding a heartbeat", e))
        })?;
        let field = format!("{}/{}", heartbeat.role.name(), heartbeat.instance);
        let _: i64 = self
            .heartbeat
            .arg(&self.prefix)
            .arg(field)
            .arg(json)
            .arg(heartbeat.at_ms)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn snapshot(&self, now_ms: i64, top_usage: usize) -> Result<StatsSnapshot, StatsError> {
        let mut connection = self.connection.clone();
        type Read = (
            u64,
            Vec<f64>,
            Vec<f64>,
            HashMap<i64, u64>,
            HashMap<i64, u64>,
            HashMap<String, String>,
        );
        let (series, training, inference, trained_per, inferred_per, beats): Read = redis::pipe()
            .cmd("SCARD")
            .arg(self.key("series"))
            .cmd("LRANGE")
            .arg(self.key("latency:training"))
            .arg(0)
            .arg(-1)
            .cmd("LRANGE")
            .arg(self.key("latency:inference"))
            .arg(0)
            .arg(-1)
            .cmd("HGETALL")
            .arg(self.key("throughput:training"))
            .cmd("HGETALL")
            .arg(self.key("throughput:inference"))
            .cmd("HGETALL")
            .arg(self.key("heartbeats"))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        // Scores are whole counts, written by ZINCRBY as such.
        let most_used: Vec<(String, f64)> = self
            .most_used
            .arg(&self.prefix)
            .arg(top_usage.min(i32::MAX as usize))
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let usage: BTreeMap<String, u64> = most_used
            .into_iter()
            .map(|(series, uses)| (series, uses as u64))
            .collect();
        let mut instances = Vec::new();
        let mut stale = Vec::new();
        for (field, json) in beats {
            match serde_json::from_str::<Heartbeat>(&json) {
                Ok(hb) if now_ms - hb.at_ms <= HEARTBEAT_TTL_MS => instances.push(hb),
                Ok(_) => stale.push(field),
                Err(err) => {
                    tracing::warn!(%field, error = %err, "dropping an unreadable heartbeat");
                    stale.push(field);
                }
            }
        }
        if !stale.is_empty() {
            let _: i64 = redis::cmd("HDEL")
                .arg(self.key("heartbeats"))
                .arg(&stale)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
        }
        sort_instances(&mut instances);
        let now_minute = minute_of(now_ms);
        Ok(StatsSnapshot {
            series_trained: series,
            training_latency: LatencySummary::of(&training),
            inference_latency: LatencySummary::of(&inference),
            training_per_minute: throughput(trained_per, now_minute),
            inference_per_minute: throughput(inferred_per, now_minute),
            model_usage: usage,
            instances,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract::metrics_contract;
    use super::RedisStats;

    /// A fresh key prefix per test on the Redis at `TEST_REDIS_URL`.
    async fn redis() -> RedisStats {
        let url =
            std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        RedisStats::connect(&url, &prefix)
            .await
            .expect("Redis at TEST_REDIS_URL (bash .ci/run starts it)")
    }

    metrics_contract!(
        #[ignore = "needs Redis: run bash .ci/run"]
        redis,
        redis().await
    );

    /// Usage counted by a release without the ranked set (only the `usage` hash) is ranked from
    /// the hash the first time, and counts on from there.
    #[tokio::test]
    #[ignore = "needs Redis: run bash .ci/run"]
    async fn usage_from_before_the_ranked_set_is_kept() {
        use super::super::StatsStore;
        use crate::domain::SeriesId;
        use crate::events::InferenceBatch;
        let store = redis().await;
        let mut connection = store.connection.clone();
        let _: () = ::redis::cmd("HSET")
            .arg(store.key("usage"))
            .arg(&["old_a", "7", "old_b", "3"][..])
            .query_async(&mut connection)
            .await
            .unwrap();
        let batch = InferenceBatch {
            id: uuid::Uuid::new_v4(),
            source: "predictor-1".into(),
            at_ms: 1_700_000_000_000,
            uses: [(SeriesId::parse("old_b").unwrap(), 5)].into(),
            latencies_ms: vec![1.0],
        };
        store.record_inferences(&batch).await.unwrap();
        let snap = store.snapshot(batch.at_ms, 10).await.unwrap();
        let usage: Vec<(&str, u64)> = snap
            .model_usage
            .iter()
            .map(|(s, n)| (s.as_str(), *n))
            .collect();
        assert_eq!(usage, [("old_a", 7), ("old_b", 8)]);
    }
}
