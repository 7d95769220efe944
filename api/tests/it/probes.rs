//! `/livez` and `/readyz`: readiness follows the database. The app reaches PostgreSQL through a
//! TCP proxy the test can cut, so the database "goes down" for this app alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::distributed::FreshDatabase;
use crate::support::{eventually, spawn_app_with};

/// Forwards connections to `target` while up; while down it closes every forwarded connection
/// and refuses new ones.
struct Cuttable {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Cuttable {
    async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (target, flag, notify) = (target.to_owned(), up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    continue;
                }
                let (target, notify) = (target.clone(), notify.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = notify.notified() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_process_is_live_and_ready_on_its_embedded_database() {
    let app = spawn_app_with(&[("API_TOKEN", "t")]).await;
    for probe in ["/livez", "/readyz"] {
        let answer = app.get(probe).await;
        assert_eq!(answer.status, 200, "{probe} needs no token");
    }
    assert_eq!(app.get("/readyz").await.json()["checks"]["database"], "ok");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run bash .ci/run"]
async fn readiness_follows_the_database() {
    let database = FreshDatabase::create().await;
    let (authority, rest) = database
        .url
        .strip_prefix("postgres://")
        .and_then(|u| u.split_once('@'))
        .map(|(user, rest)| (user.to_owned(), rest.to_owned()))
        .expect("a postgres:// URL with a user");
    let (host_port, db_name) = rest.split_once('/').expect("a database name");
    let proxy = Cuttable::start(host_port).await;
    let url = format!("postgres://{authority}@127.0.0.1:{}/{db_name}", proxy.port);
    let app = spawn_app_with(&[("DATABASE_URL", &url)]).await;
    assert_eq!(app.get("/readyz").await.status, 200);

    proxy.down();
    eventually("/readyz answers 503", || async {
        app.get("/readyz").await.status == 503
    })
    .await;
    let answer = app.get("/readyz").await;
    assert_eq!(
        answer.json()["checks"]["database"],
        "The database is unavailable"
    );
    assert_eq!(app.get("/livez").await.status, 200, "still live");

    proxy.up();
    eventually("/readyz answers 200 again", || async {
        app.get("/readyz").await.status == 200
    })
    .await;
    drop(app);
    database.drop_now().await;
}
