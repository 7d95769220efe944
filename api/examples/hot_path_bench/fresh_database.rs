//! Each run of the benchmark on PostgreSQL gets a database of its own, made on the server
//! `--database-url` names and dropped at the end: a run never measures a database a previous run
//! filled (a million models, the ingest's training rows) or the autovacuum that filling set off.

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

/// A database made for this run; dropped (with whatever is still connected to it) on `drop_now`
/// (a run that panics leaves it behind, named after its process id).
pub struct FreshDatabase {
    /// Where the product and the roles find it.
    pub url: String,
    server: String,
    name: String,
}

impl FreshDatabase {
    /// A fresh database beside the one `url` names (on the same server, reached through it).
    pub async fn beside(url: &str) -> Self {
        let name = format!("anomaly_bench_{}", std::process::id());
        let db = Database::connect(url)
            .await
            .expect("the --database-url server");
        db.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("CREATE DATABASE {name}"),
        ))
        .await
        .expect("creating the run's database");
        // scheme://authority[/database][?options]: the run's database in place of the named one.
        let (before_query, query) = url.split_once('?').unwrap_or((url, ""));
        let (scheme, rest) = before_query
            .split_once("://")
            .unwrap_or(("postgres", before_query));
        let authority = rest
            .split_once('/')
            .map_or(rest, |(authority, _)| authority);
        let suffix = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        Self {
            url: format!("{scheme}://{authority}/{name}{suffix}"),
            server: url.to_owned(),
            name,
        }
    }

    /// Drops the run's database (the processes that used it are gone or going).
    pub async fn drop_now(self) {
        let Ok(db) = Database::connect(&self.server).await else {
            eprintln!("could not reach the server to drop database {}", self.name);
            return;
        };
        let dropped = db
            .execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ))
            .await;
        if let Err(err) = dropped {
            eprintln!("dropping database {}: {err}", self.name);
        }
    }
}
