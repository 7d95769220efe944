//! The spread scenario's series: one `zscore` series fitted through the product, then copied
//! straight into the database as `{PREFIX}1` … `{PREFIX}{n-1}` by one statement (a million fits
//! over HTTP would take longer than the benchmark).

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};

/// The spread series are named `m0`, `m1`, …
pub const PREFIX: &str = "m";

/// Makes `series` trained series on the product at `port` whose database is `database_url`.
pub async fn train(database_url: &str, port: u16, series: u64) {
    let points: Vec<Value> = (0..100)
        .map(|i| json!({ "timestamp": 1_700_000_000 + 60 * i, "value": 50.0 + f64::from(i % 7) }))
        .collect();
    let fit = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/fit/{PREFIX}0"))
        .json(&json!({ "data": points, "detector": { "kind": "zscore" } }))
        .send()
        .await
        .expect("fit");
    assert!(fit.status().is_success(), "fit answered {}", fit.status());
    let db = Database::connect(database_url).await.expect("the database");
    let backend = db.get_database_backend();
    let copies = format!(
        "SELECT '{PREFIX}' || i, version, detector, parameters, points_used, created_at_ms \
         FROM {numbers}, model WHERE model.series_id = '{PREFIX}0' \
         ON CONFLICT DO NOTHING",
        numbers = match backend {
            DbBackend::Postgres => format!("generate_series(1, {}) AS numbers (i)", series - 1),
            _ => "numbers".to_owned(),
        }
    );
    let insert = "INSERT INTO model (series_id, version, detector, parameters, points_used, \
                  created_at_ms) ";
    let sql = match backend {
        DbBackend::Postgres => format!("{insert}{copies}"),
        _ => format!(
            "WITH RECURSIVE numbers (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM numbers \
             WHERE i < {}) {insert}{copies}",
            series - 1
        ),
    };
    db.execute_raw(Statement::from_string(backend, sql))
        .await
        .expect("copying the series");
    if backend == DbBackend::Postgres {
        // Now rather than by autovacuum in the middle of a measured run.
        db.execute_raw(Statement::from_string(backend, "VACUUM ANALYZE model"))
            .await
            .expect("vacuuming the copied series");
    }
}
