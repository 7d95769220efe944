//! Configuration from the environment (a `.env` file is read first if present). The seed's
//! variable names keep working; `.env.example` documents every variable.

use std::time::Duration;

use crate::graphql::{QueryLimits, WsLimits, guard};
use crate::listen::ServerLimits;
use crate::rest::DetectLimits;

/// What went wrong reading the configuration; the text says which variable to fix.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    /// `APP_PORT`; unset, each command listens on its own default ([`Config::port_for`]).
    pub port: Option<u16>,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// Kafka bootstrap servers; none means the in-process bus.
    pub kafka_brokers: Option<String>,
    /// Put before every Kafka topic and consumer group name.
    pub kafka_topic_prefix: String,
    /// Partitions and replication factor of the topics created at start.
    pub kafka_partitions: i32,
    pub kafka_replication: i32,
    /// Whether a role creates the topics it finds missing (off where topics are made by the
    /// cluster's operators and applications may not create them).
    pub kafka_create_topics: bool,
    /// How long the producer holds events to send them together (`linger.ms`).
    pub kafka_linger_ms: u32,
    /// Redis URL; none means the in-process metrics store.
    pub redis_url: Option<String>,
    /// Put before every Redis key.
    pub redis_prefix: String,
    /// Where the gateway reaches the trainer (distributed deployment).
    pub trainer_url: Option<String>,
    /// Predictors the gateway calls before (and besides) those that announce themselves.
    pub predictor_urls: Vec<String>,
    /// Where this predictor tells gateways to reach it (`ADVERTISED_URL`); unset,
    /// `http://<host name>:<port>`.
    pub advertised_url: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most operations one GraphQL batch request may hold.
    pub graphql_batch_limit: usize,
    /// Most series `/healthcheck` lists in `model_usage` (the most used).
    pub health_top_series: usize,
    /// What one GraphQL request may cost, nest, answer and take.
    pub graphql: QueryLimits,
    /// Connection timeouts and the cap on open connections.
    pub server: ServerLimits,
    /// What one `/detect` request may cost and take.
    pub detect: DetectLimits,
    /// What the GraphQL WebSocket allows its clients.
    pub ws: WsLimits,
    /// The bearer token clients must present; none leaves the gateway open.
    pub api_token: Option<String>,
    /// A second token that may only read (queries, subscriptions, REST GETs).
    pub api_read_token: Option<String>,
    /// Origins browsers may call the API from (CORS); empty: only the gateway's own pages.
    pub cors_origins: Vec<String>,
    pub heartbeat_interval: Duration,
    /// Bound of each in-process bus queue.
    pub bus_capacity: usize,
    /// How the gateway's live feeds are sized (per-subscriber queue, remembered events).
    pub feed: anomaly_workers::fanout::FeedLimits,
    /// When a series' online learning state is checkpointed.
    pub checkpoints: anomaly_workers::predictor::Checkpoints,
    /// Series a predictor keeps in memory; the least recently used leave past it.
    pub model_cache_max: usize,
    /// Whether a predictor on Kafka logs what each predict teaches an online model on `points`
    /// before it answers (`LOG_LEARNT_POINTS`), so that its SIGKILL loses no acknowledged
    /// learning; off, a predict does not wait for the broker and a SIGKILL loses what was learnt
    /// since the series' last checkpoint.
    pub log_learnt_points: bool,
    pub log_format: LogFormat,
    /// What Prometheus remote write into `/api/v1/write` models, and where results go.
    pub remote_write: crate::remote_write::RemoteWriteConfig,
    /// Where alerts are sent (Alertmanager's v2 API); none: nowhere.
    pub alertmanager: Option<crate::alertmanager::AlertmanagerSettings>,
    /// How alerts are delivered to the registered webhook endpoints.
    pub webhooks: crate::webhooks::WebhookSettings,
}

/// `HEALTH_TOP_SERIES` when unset.
pub const DEFAULT_HEALTH_TOP_SERIES: usize = 100;
/// `MAX_BODY_BYTES` when unset: 2 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/anomaly.db?mode=rwc";
/// `KAFKA_LINGER_MS` when unset: the Kafka producer gathers events for up to 2 ms into one
/// request, which costs a live event at most that much delay (librdkafka's default of 5 ms
/// measured 5 ms more on a subscriber's p50 for 3-7% more distributed throughput).
pub const DEFAULT_KAFKA_LINGER_MS: u32 = 2;
/// The longest `KAFKA_LINGER_MS` taken: every live event may wait that long.
pub const MAX_KAFKA_LINGER_MS: u32 = 1000;

impl Config {
    /// Where `command` listens: `APP_PORT`, else its own default, so every role can run beside
    /// the others on one host as configured by default: 8000 for `serve` and the gateway, 8001
    /// the trainer, 8002 a predictor, 8003 a metrics consumer, 8004 the training-data consumer.
    pub fn port_for(&self, command: &str) -> u16 {
        self.port.unwrap_or(match command {
            "trainer" => 8001,
            "predictor" => 8002,
            "metrics-consumer" => 8003,
            "training-data-consumer" => 8004,
            _ => 8000,
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests). Empty
    /// values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        // Read once, used by more than one part.
        let max_body_bytes = parse_or(&get, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?;
        Ok(Self {
            host: get("APP_HOST").unwrap_or_else(|| "0.0.0.0".into()),
            port: get("APP_PORT")
                .map(|v| {
                    v.trim().parse().map_err(|_| {
                        ConfigError(format!("APP_PORT must be a port number, not {v:?}"))
                    })
                })
                .transpose()?,
            database_url: database_url(&get)?,
            kafka_brokers: get("KAFKA_BROKERS"),
            kafka_topic_prefix: get("KAFKA_TOPIC_PREFIX").unwrap_or_default(),
            kafka_partitions: parse_or(&get, "KAFKA_PARTITIONS", 3)?,
            kafka_replication: parse_or(&get, "KAFKA_REPLICATION_FACTOR", 1)?,
            kafka_create_topics: parse_or(&get, "KAFKA_CREATE_TOPICS", true)?,
            kafka_linger_ms: kafka_linger_ms(&get)?,
            redis_url: redis_url(&get)?,
            redis_prefix: get("REDIS_PREFIX").unwrap_or_else(|| "anomaly:".into()),
            trainer_url: get("TRAINER_URL"),
            advertised_url: get("ADVERTISED_URL")
                .map(|url| {
                    let url = url.trim_end_matches('/').to_owned();
                    if url.starts_with("http://") || url.starts_with("https://") {
                        Ok(url)
                    } else {
                        Err(ConfigError(format!(
                            "ADVERTISED_URL must be an http:// or https:// URL, not {url:?}"
                        )))
                    }
                })
                .transpose()?,
            predictor_urls: get("PREDICTOR_URL")
                .map(|urls| {
                    urls.split(',')
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            max_body_bytes,
            graphql_batch_limit: parse_or(&get, "GRAPHQL_BATCH_LIMIT", 10)?.max(1),
            health_top_series: parse_or(&get, "HEALTH_TOP_SERIES", DEFAULT_HEALTH_TOP_SERIES)?,
            graphql: QueryLimits {
                max_cost: parse_or(&get, "GRAPHQL_MAX_COST", guard::DEFAULT_MAX_COST)?,
                max_depth: parse_or(&get, "GRAPHQL_MAX_DEPTH", guard::DEFAULT_MAX_DEPTH)?,
                introspection: parse_or(&get, "GRAPHQL_INTROSPECTION", true)?,
                max_response_bytes: parse_or(
                    &get,
                    "GRAPHQL_MAX_RESPONSE_BYTES",
                    QueryLimits::default().max_response_bytes,
                )?,
                timeout: secs(&get, "GRAPHQL_TIMEOUT_SECS", 30)?,
            },
            server: ServerLimits {
                header_timeout: secs(&get, "HTTP_HEADER_TIMEOUT_SECS", 30)?,
                request_timeout: secs(&get, "HTTP_REQUEST_TIMEOUT_SECS", 60)?,
                max_connections: parse_or(
                    &get,
                    "HTTP_MAX_CONNECTIONS",
                    crate::listen::default_max_connections(),
                )?
                .max(1),
                max_body_bytes,
                linger: crate::listen::Linger {
                    time: secs(&get, "HTTP_LINGER_SECS", 10)?,
                    bytes: parse_or(&get, "HTTP_LINGER_BYTES", 64 * 1024 * 1024)?,
                },
            },
            ws: WsLimits {
                init_timeout: secs(&get, "GRAPHQL_WS_INIT_TIMEOUT_SECS", 10)?,
                per_connection: parse_or(&get, "GRAPHQL_WS_MAX_SUBSCRIPTIONS", 100)?,
                per_gateway: parse_or(&get, "GRAPHQL_MAX_SUBSCRIPTIONS", 100_000)?,
                outbox_bytes: parse_or(&get, "GRAPHQL_WS_OUTBOX_BYTES", 64 * 1024)?.max(1024),
            },
            detect: DetectLimits {
                max_cost: parse_or(&get, "DETECT_MAX_COST", DetectLimits::default().max_cost)?,
                timeout: secs(&get, "DETECT_TIMEOUT_SECS", 30)?,
            },
            cors_origins: get("CORS_ORIGINS")
                .map(|origins| {
                    origins
                        .split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            api_token: get("API_TOKEN"),
            api_read_token: match (get("API_TOKEN"), get("API_READ_TOKEN")) {
                (None, Some(_)) => {
                    return Err(ConfigError(
                        "API_READ_TOKEN is set without API_TOKEN: a read-only token needs the \
                         full token beside it (without API_TOKEN the gateway is open to all)"
                            .into(),
                    ));
                }
                (Some(full), Some(read)) if full == read => {
                    return Err(ConfigError(
                        "API_READ_TOKEN must differ from API_TOKEN".into(),
                    ));
                }
                (_, read) => read,
            },
            heartbeat_interval: Duration::from_secs(parse_or(&get, "HEARTBEAT_INTERVAL_SECS", 5)?)
                .max(Duration::from_secs(1)),
            bus_capacity: parse_or(&get, "BUS_CAPACITY", 1024)?,
            feed: anomaly_workers::fanout::FeedLimits {
                subscriber_buffer: parse_or(&get, "SUBSCRIBER_BUFFER", 256)?.max(1),
                recent: parse_or(&get, "LIVE_RECENT_EVENTS", 4096)?,
            },
            checkpoints: anomaly_workers::predictor::Checkpoints {
                every: parse_or(&get, "CHECKPOINT_EVERY", 100)?,
                min_interval: Duration::from_millis(parse_or(
                    &get,
                    "CHECKPOINT_MIN_INTERVAL_MS",
                    1000,
                )?),
            },
            log_learnt_points: parse_or(&get, "LOG_LEARNT_POINTS", true)?,
            model_cache_max: match parse_or(
                &get,
                "MODEL_CACHE_MAX",
                anomaly_workers::predictor::DEFAULT_MODEL_CACHE_MAX,
            )? {
                0 => {
                    return Err(ConfigError(
                        "MODEL_CACHE_MAX must be at least 1 (series a predictor keeps in memory)"
                            .into(),
                    ));
                }
                series => series,
            },
            remote_write: remote_write(&get)?,
            alertmanager: match get("ALERTMANAGER_URL") {
                None => None,
                Some(url) => Some(crate::alertmanager::AlertmanagerSettings {
                    url: http_url("ALERTMANAGER_URL", url)?,
                    public_url: get("PUBLIC_URL").unwrap_or_else(|| "http://localhost:8000".into()),
                    resend: secs(&get, "ALERTMANAGER_RESEND_SECS", 60)?,
                    queue: parse_or(&get, "ALERTMANAGER_QUEUE", 10_000)?.max(1),
                }),
            },
            webhooks: {
                let defaults = crate::webhooks::WebhookSettings::default();
                crate::webhooks::WebhookSettings {
                    max_attempts: parse_or(&get, "WEBHOOK_MAX_ATTEMPTS", defaults.max_attempts)?
                        .max(1),
                    first_backoff: Duration::from_millis(parse_or(
                        &get,
                        "WEBHOOK_FIRST_BACKOFF_MS",
                        defaults.first_backoff.as_millis() as u64,
                    )?),
                    max_backoff: secs(
                        &get,
                        "WEBHOOK_MAX_BACKOFF_SECS",
                        defaults.max_backoff.as_secs(),
                    )?,
                    timeout: secs(&get, "WEBHOOK_TIMEOUT_SECS", defaults.timeout.as_secs())?,
                    concurrency: parse_or(&get, "WEBHOOK_CONCURRENCY", defaults.concurrency)?
                        .max(1),
                    max_endpoints: parse_or(&get, "WEBHOOK_MAX_ENDPOINTS", defaults.max_endpoints)?,
                }
            },
            log_format: match get("LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "LOG_FORMAT must be text or json, not {other:?}"
                    )));
                }
            },
        })
    }
}

/// The `REMOTE_WRITE_*` variables.
fn remote_write(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<crate::remote_write::RemoteWriteConfig, ConfigError> {
    use crate::remote_write::{RemoteWriteConfig, RemoteWriteSettings, Selector};
    let defaults = RemoteWriteSettings::default();
    let selector = match get("REMOTE_WRITE_SELECTOR") {
        None => Selector::all(),
        Some(text) => Selector::parse(&text)
            .map_err(|err| ConfigError(format!("REMOTE_WRITE_SELECTOR: {err}")))?,
    };
    let spec: anomaly_workers::detector::ModelSpec = match get("REMOTE_WRITE_SPEC") {
        None => Default::default(),
        Some(json) => serde_json::from_str(&json).map_err(|err| {
            ConfigError(format!(
                "REMOTE_WRITE_SPEC must be a fit body's detector and alert options as JSON \
                 ({{\"detector\": {{\"kind\": \"ewma\"}}}}): {err}"
            ))
        })?,
    };
    // Out-of-range detector options are found now, not at the first series' fit.
    let probe = anomaly_workers::domain::TrainingSet::parse(
        (0..64)
            .map(|i| anomaly_workers::domain::Point {
                timestamp: 60 * i,
                value: (i % 7) as f64,
            })
            .collect(),
    )
    .expect("a varied probe series");
    spec.detector
        .fit(&probe)
        .map_err(|err| ConfigError(format!("REMOTE_WRITE_SPEC: {}", err.0)))?;
    let warmup_points: usize = parse_or(get, "REMOTE_WRITE_WARMUP_POINTS", defaults.warmup_points)?;
    if !(anomaly_workers::domain::TrainingSet::MIN_POINTS..=100_000).contains(&warmup_points) {
        return Err(ConfigError(format!(
            "REMOTE_WRITE_WARMUP_POINTS must be between 3 and 100000, not {warmup_points}"
        )));
    }
    Ok(RemoteWriteConfig {
        settings: RemoteWriteSettings {
            selector,
            spec,
            warmup_points,
            max_series: parse_or(get, "REMOTE_WRITE_MAX_SERIES", defaults.max_series)?,
            new_series_per_minute: parse_or(
                get,
                "REMOTE_WRITE_NEW_SERIES_PER_MINUTE",
                defaults.new_series_per_minute,
            )?,
            max_samples_per_request: parse_or(
                get,
                "REMOTE_WRITE_MAX_SAMPLES",
                defaults.max_samples_per_request,
            )?,
            max_decoded_bytes: parse_or(
                get,
                "REMOTE_WRITE_MAX_DECODED_BYTES",
                defaults.max_decoded_bytes,
            )?,
            series_ttl: secs(
                get,
                "REMOTE_WRITE_SERIES_TTL_SECS",
                defaults.series_ttl.as_secs(),
            )?,
            timeout: secs(get, "REMOTE_WRITE_TIMEOUT_SECS", defaults.timeout.as_secs())?,
        },
        results_url: get("REMOTE_WRITE_RESULTS_URL")
            .map(|url| http_url("REMOTE_WRITE_RESULTS_URL", url))
            .transpose()?,
        results_token: get("REMOTE_WRITE_RESULTS_TOKEN"),
        results_queue: parse_or(get, "REMOTE_WRITE_RESULTS_QUEUE", 100_000)?.max(1),
    })
}

/// An http(s) URL, or an error naming the variable.
fn http_url(name: &str, url: String) -> Result<String, ConfigError> {
    let url = url.trim().to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError(format!(
            "{name} must be an http:// or https:// URL, not {url:?}"
        )));
    }
    Ok(url)
}

/// A duration in (possibly fractional) seconds, at least a millisecond.
fn secs(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<Duration, ConfigError> {
    let value: f64 = parse_or(get, name, default as f64)?;
    if !value.is_finite() || value <= 0.0 || value > 86_400.0 {
        return Err(ConfigError(format!(
            "{name} must be a number of seconds between 0 and 86400, not {value}"
        )));
    }
    Ok(Duration::from_secs_f64(value).max(Duration::from_millis(1)))
}

fn parse_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("{name} has an invalid value {raw:?}"))),
    }
}

fn kafka_linger_ms(get: &impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    let ms = parse_or(get, "KAFKA_LINGER_MS", DEFAULT_KAFKA_LINGER_MS)?;
    if ms > MAX_KAFKA_LINGER_MS {
        return Err(ConfigError(format!(
            "KAFKA_LINGER_MS is at most {MAX_KAFKA_LINGER_MS} (every live event may wait that long), not {ms}"
        )));
    }
    Ok(ms)
}

/// `DATABASE_URL`, else the seed's `POSTGRES_*` variables (when `POSTGRES_HOST` or
/// `POSTGRES_DB` is set), else the embedded SQLite file.
fn database_url(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    if let Some(url) = get("DATABASE_URL") {
        return Ok(url);
    }
    if get("POSTGRES_HOST").is_none() && get("POSTGRES_DB").is_none() {
        return Ok(DEFAULT_DATABASE_URL.into());
    }
    let user = get("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
    let password = get("POSTGRES_PASSWORD");
    let host = get("POSTGRES_HOST").unwrap_or_else(|| "localhost".into());
    let port: u16 = parse_or(get, "POSTGRES_PORT", 5432)?;
    let db = get("POSTGRES_DB").unwrap_or_else(|| user.clone());
    let credentials = match password {
        Some(password) => format!("{}:{}", encode(&user), encode(&password)),
        None => encode(&user),
    };
    Ok(format!(
        "postgres://{credentials}@{host}:{port}/{}",
        encode(&db)
    ))
}

/// `REDIS_URL`, else the seed's `REDIS_HOST`/`REDIS_PORT`.
fn redis_url(get: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    if let Some(url) = get("REDIS_URL") {
        return Ok(Some(url));
    }
    match get("REDIS_HOST") {
        None => Ok(None),
        Some(host) => {
            let port: u16 = parse_or(get, "REDIS_PORT", 6379)?;
            Ok(Some(format!("redis://{host}:{port}")))
        }
    }
}

/// Percent-encodes everything but unreserved characters, for URL user info and paths.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_platform_on_port_8000() {
        let c = config(&[]).unwrap();
        assert_eq!((c.host.as_str(), c.port_for("serve")), ("0.0.0.0", 8000));
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert!(c.kafka_brokers.is_none() && c.redis_url.is_none());
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn the_seed_postgres_variables_build_a_url() {
        let c = config(&[
            ("POSTGRES_USER", "anomaly"),
            ("POSTGRES_PASSWORD", "p@ss word"),
            ("POSTGRES_DB", "anomaly"),
            ("POSTGRES_HOST", "db"),
        ])
        .unwrap();
        assert_eq!(
            c.database_url,
            "postgres://anomaly:p%40ss%20word@db:5432/anomaly"
        );
        let explicit = config(&[
            ("DATABASE_URL", "postgres://x@y/z"),
            ("POSTGRES_HOST", "db"),
        ]);
        assert_eq!(explicit.unwrap().database_url, "postgres://x@y/z");
    }

    #[test]
    fn the_seed_redis_variables_build_a_url() {
        let c = config(&[("REDIS_HOST", "redis"), ("REDIS_PORT", "6380")]).unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://redis:6380"));
    }

    #[test]
    fn predictor_urls_are_a_comma_separated_list() {
        let c = config(&[("PREDICTOR_URL", "http://p1:8000, http://p2:8000,")]).unwrap();
        assert_eq!(c.predictor_urls, ["http://p1:8000", "http://p2:8000"]);
        assert!(config(&[]).unwrap().predictor_urls.is_empty());
    }

    #[test]
    fn an_advertised_url_is_an_http_url() {
        let c = config(&[("ADVERTISED_URL", "http://p1:8002/")]).unwrap();
        assert_eq!(c.advertised_url.as_deref(), Some("http://p1:8002"));
        let err = config(&[("ADVERTISED_URL", "p1:8002")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("ADVERTISED_URL"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("APP_PORT", "eighty")]).unwrap_err().to_string();
        assert!(err.contains("APP_PORT"), "{err}");
        let err = config(&[("LOG_FORMAT", "xml")]).unwrap_err().to_string();
        assert!(err.contains("LOG_FORMAT"), "{err}");
        for bad in ["0", "-5", "lots"] {
            let err = config(&[("MODEL_CACHE_MAX", bad)]).unwrap_err().to_string();
            assert!(err.contains("MODEL_CACHE_MAX"), "{bad}: {err}");
        }
        assert_eq!(
            config(&[("MODEL_CACHE_MAX", "7")]).unwrap().model_cache_max,
            7
        );
        for bad in ["1001", "-1", "soon"] {
            let err = config(&[("KAFKA_LINGER_MS", bad)]).unwrap_err().to_string();
            assert!(err.contains("KAFKA_LINGER_MS"), "{bad}: {err}");
        }
        assert_eq!(
            config(&[]).unwrap().kafka_linger_ms,
            DEFAULT_KAFKA_LINGER_MS
        );
        assert_eq!(
            config(&[("KAFKA_LINGER_MS", "0")]).unwrap().kafka_linger_ms,
            0
        );
    }

    #[test]
    fn limits_read_fractional_seconds_and_refuse_nonsense() {
        let c = config(&[
            ("HTTP_HEADER_TIMEOUT_SECS", "0.25"),
            ("GRAPHQL_MAX_COST", "500"),
        ])
        .unwrap();
        assert_eq!(c.server.header_timeout, Duration::from_millis(250));
        assert_eq!(c.graphql.max_cost, 500);
        for bad in ["0", "-1", "NaN", "soon"] {
            let err = config(&[("HTTP_REQUEST_TIMEOUT_SECS", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("HTTP_REQUEST_TIMEOUT_SECS"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_read_only_token_needs_the_full_one() {
        let err = config(&[("API_READ_TOKEN", "viewer")]).unwrap_err();
        assert!(err.to_string().contains("API_TOKEN"), "{err}");
        assert!(config(&[("API_TOKEN", "same"), ("API_READ_TOKEN", "same")]).is_err());
        let c = config(&[("API_TOKEN", "full"), ("API_READ_TOKEN", "viewer")]).unwrap();
        assert_eq!(c.api_read_token.as_deref(), Some("viewer"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[("KAFKA_BROKERS", ""), ("APP_PORT", " ")]).unwrap();
        assert!(c.kafka_brokers.is_none());
        assert_eq!(c.port_for("serve"), 8000);
    }

    #[test]
    fn monitoring_settings_are_checked_at_start() {
        let am = ("ALERTMANAGER_URL", "http://am:9093");
        for vars in [
            vec![("REMOTE_WRITE_SELECTOR", "{job=api}")],
            vec![("REMOTE_WRITE_SPEC", "{\"detector\": {\"kind\": \"nope\"}}")],
            vec![("REMOTE_WRITE_SPEC", "not json")],
            vec![("REMOTE_WRITE_WARMUP_POINTS", "2")],
            vec![("REMOTE_WRITE_RESULTS_URL", "prometheus:9090")],
            vec![("ALERTMANAGER_URL", "alertmanager:9093")],
            vec![("ALERTMANAGER_RESEND_SECS", "0"), am],
        ] {
            let (name, bad) = vars[0];
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={bad}: {err}");
        }
        let c = config(&[
            ("REMOTE_WRITE_SELECTOR", "{__name__=~\"node_.*\"}"),
            ("REMOTE_WRITE_SPEC", "{\"detector\": {\"kind\": \"ewma\"}}"),
            ("ALERTMANAGER_URL", "http://am:9093/"),
        ])
        .unwrap();
        assert_eq!(c.remote_write.settings.spec.detector.name(), "ewma");
        assert_eq!(c.alertmanager.unwrap().url, "http://am:9093/");
        assert!(config(&[]).unwrap().alertmanager.is_none());
    }

    /// Roles started side by side on one host with defaults do not collide; APP_PORT wins.
    #[test]
    fn every_command_has_a_default_port_of_its_own() {
        let c = config(&[]).unwrap();
        let commands = [
            "serve",
            "gateway",
            "trainer",
            "predictor",
            "metrics-consumer",
            "training-data-consumer",
        ];
        let ports: Vec<u16> = commands.iter().map(|name| c.port_for(name)).collect();
        assert_eq!(ports, [8000, 8000, 8001, 8002, 8003, 8004]);
        let c = config(&[("APP_PORT", "9100")]).unwrap();
        assert!(commands.iter().all(|name| c.port_for(name) == 9100));
        let err = config(&[("APP_PORT", "eighty")]).unwrap_err().to_string();
        assert!(err.contains("APP_PORT"), "{err}");
    }
}
