//! The test harness: `spawn_app()` starts the real server on 127.0.0.1:0 with a fresh database
//! of its own and hands back a client for it.
//!
//! The backend comes from the environment: SQLite (a temp file) by default; PostgreSQL when
//! `STAGEFLOW_TEST_POSTGRES_URL` names a server (a fresh database per test, dropped afterwards).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Once};

use chrono::{DateTime, Utc};
use diesel::{Connection, PgConnection, connection::SimpleConnection};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use stageflow::api::server::Application;
use stageflow::clock::ManualClock;
use stageflow::config::{Argon2Params, Config};
use stageflow::db::{Backend, DatabaseUrl};

pub const OPERATOR_USERNAME: &str = "operator";
pub const OPERATOR_PASSWORD: &str = "operator-password-for-tests";
pub const POSTGRES_ENV: &str = "STAGEFLOW_TEST_POSTGRES_URL";

/// A database made for one test and removed after it.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    /// A fresh, empty database on the backend chosen by the environment.
    pub fn create() -> Self {
        match std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty()) {
            Some(admin_url) => Self::create_postgres(&admin_url),
            None => {
                announce_sqlite_only();
                Self::create_sqlite()
            }
        }
    }

    pub fn create_sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stageflow.db");
        Self::Sqlite { _dir: dir, path }
    }

    pub fn create_postgres(admin_url: &str) -> Self {
        let name = format!("sf_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::establish(admin_url).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        Self::Postgres {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    pub fn url(&self) -> DatabaseUrl {
        match self {
            Self::Sqlite { path, .. } => DatabaseUrl::Sqlite(path.clone()),
            Self::Postgres { url, .. } => DatabaseUrl::Postgres(url.clone()),
        }
    }

    /// Where this test's attachment content goes.
    pub fn data_dir(&self) -> std::path::PathBuf {
        match self {
            Self::Sqlite { path, .. } => path.with_file_name("data"),
            Self::Postgres { name, .. } => std::env::temp_dir().join(name.as_str()),
        }
    }

    /// The URL as the `DATABASE_URL` variable would carry it.
    pub fn url_string(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => path.display().to_string(),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.url().backend()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(name.as_str()));
        }
    }
}

/// Says once, on the terminal (past the test harness's output capture), that PostgreSQL is
/// not being tested in this run.
fn announce_sqlite_only() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nnote: {POSTGRES_ENV} is not set — these tests run on SQLite only; PostgreSQL is \
             skipped (.ci/run runs them on both)\n"
        );
    });
}

/// Whether this run tests PostgreSQL (tests that need both backends use it).
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|v| !v.is_empty())
}

/// The configuration every test app starts from: cheap password hashing, one worker, a fixed
/// operator password; everything else as shipped.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::from_lookup(|_| None).unwrap();
    config.database_url = db.url();
    config.data_dir = db.data_dir();
    config.backup.dir = db.data_dir().join("backups");
    config.master_key = stageflow::config::MasterKeySource::File {
        path: db.data_dir().join("master.key"),
        default: true,
    };
    config.operator_username = OPERATOR_USERNAME.to_owned();
    config.operator_password = Some(OPERATOR_PASSWORD.to_owned());
    config.workers = 1;
    config.db_pool_size = 8;
    // Tests drive job passes themselves (`jobs::run_due`); a pass started by every commit
    // would race them. tests/api/jobs.rs turns it on where the wake itself is tested.
    config.jobs.wake_on_enqueue = false;
    // A subscription's delivery job ends once it has sent everything, so a pass (and the
    // test waiting for it) does not linger.
    config.webhooks.linger = std::time::Duration::ZERO;
    // Generous, so that only the rate-limit tests meet the limits.
    config.login_rate_per_minute = 10_000;
    config.account_rate_per_minute = 10_000;
    config.session_rate_per_minute = 10_000;
    config.hash_queue_size = 10_000;
    config.argon2 = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    config
}

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-04-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: actix_web::web::Data<stageflow::api::state::AppState>,
    pub db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server with a test configuration changed by `customize`.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::create();
    let mut config = test_config(&db);
    customize(&mut config);
    let clock = Arc::new(ManualClock::new(start_time()));
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_with_listener(config, clock.clone(), listener)
        .await
        .unwrap();
    let address = format!("{scheme}://127.0.0.1:{}", app.port());
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        // Idle connections are dropped before the server's 5 s keep-alive closes them: a
        // request on a connection the server is closing fails with IncompleteMessage (seen
        // when a test pauses for jobs and mail parsing on a loaded machine).
        client: reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap(),
        clock,
        state,
        db,
    }
}

/// A response read whole: status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// The body as it came (binary downloads).
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The body without the problem's `instance` (the request id, different on every
    /// response): what two refusals must share to be indistinguishable.
    pub fn sans_instance(&self) -> String {
        match serde_json::from_str::<Value>(&self.text) {
            Ok(Value::Object(mut body)) => {
                body.remove("instance");
                Value::Object(body).to_string()
            }
            _ => self.text.clone(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and type; returns the body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["type"], kind, "body: {}", self.text);
        assert_eq!(body["status"], status);
        assert!(body["title"].is_string());
        assert!(body["detail"].is_string());
        body
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.unwrap().to_vec();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, tenant: Option<&str>, username: &str, password: &str) -> String {
        let mut body = serde_json::json!({"username": username, "password": password});
        if let Some(tenant) = tenant {
            body["tenant"] = tenant.into();
        }
        let reply = self.post_json("/api/v1/auth/token", None, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.text);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn operator_token(&self) -> String {
        self.login(None, OPERATOR_USERNAME, OPERATOR_PASSWORD).await
    }
}

/// A tenant made through the operator API, with its first admin signed in.
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub account_id: String,
    pub plan_id: String,
    pub admin_token: String,
}

pub const ADMIN_PASSWORD: &str = "correct-horse-battery-staple";
pub const USER_PASSWORD: &str = "purple-monkey-dishwasher-42";

impl TestApp {
    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, path, token, None).await
    }

    /// POSTs and asserts 201; returns the body.
    pub async fn create(&self, path: &str, token: &str, body: Value) -> Value {
        let reply = self.post_json(path, Some(token), &body).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "POST {path}: {}",
            reply.text
        );
        reply.json()
    }

    pub async fn create_plan(&self, operator: &str, max_tenants: i64, max_users: i64) -> String {
        let name = format!("plan-{}", uuid::Uuid::now_v7().simple());
        let plan = self
            .create(
                "/api/v1/plans",
                operator,
                serde_json::json!({"name": name, "max_tenants": max_tenants,
                    "max_processes": 10, "max_users": max_users}),
            )
            .await;
        plan["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_account(&self, operator: &str, plan_id: &str) -> String {
        let name = format!("account-{}", uuid::Uuid::now_v7().simple());
        let account = self
            .create(
                "/api/v1/accounts",
                operator,
                serde_json::json!({"name": name, "plan_id": plan_id}),
            )
            .await;
        account["id"].as_str().unwrap().to_owned()
    }

    /// Creates a tenant under `account_id` and signs its admin in.
    pub async fn create_tenant_in(&self, operator: &str, account_id: &str, slug: &str) -> String {
        let tenant = self
            .create(
                "/api/v1/tenants",
                operator,
                serde_json::json!({"account_id": account_id, "slug": slug, "name": format!("Tenant {slug}"),
                    "time_zone": "Asia/Tokyo",
                    "admin": {"username": "admin", "password": ADMIN_PASSWORD}}),
            )
            .await;
        tenant["id"].as_str().unwrap().to_owned()
    }

    /// A tenant on a plan of its own with generous caps.
    pub async fn tenant(&self, slug: &str) -> Tenant {
        self.tenant_with_caps(slug, 10, 100).await
    }

    pub async fn tenant_with_caps(&self, slug: &str, max_tenants: i64, max_users: i64) -> Tenant {
        let operator = self.operator_token().await;
        let plan_id = self.create_plan(&operator, max_tenants, max_users).await;
        let account_id = self.create_account(&operator, &plan_id).await;
        let id = self.create_tenant_in(&operator, &account_id, slug).await;
        let admin_token = self.login(Some(slug), "admin", ADMIN_PASSWORD).await;
        Tenant {
            id,
            slug: slug.to_owned(),
            account_id,
            plan_id,
            admin_token,
        }
    }

    /// Creates a user with `roles` in `tenant`; returns its id.
    pub async fn user(&self, tenant: &Tenant, username: &str, roles: &[&str]) -> String {
        let user = self
            .create(
                "/api/v1/users",
                &tenant.admin_token,
                serde_json::json!({"username": username, "password": USER_PASSWORD,
                    "display_name": username, "roles": roles}),
            )
            .await;
        user["id"].as_str().unwrap().to_owned()
    }

    /// Creates a user with `roles` and signs them in; returns the access token.
    pub async fn user_token(&self, tenant: &Tenant, username: &str, roles: &[&str]) -> String {
        self.user(tenant, username, roles).await;
        self.login(Some(&tenant.slug), username, USER_PASSWORD)
            .await
    }

    /// Logs in and returns the whole token response.
    pub async fn login_pair(&self, tenant: Option<&str>, username: &str, password: &str) -> Value {
        let mut body = serde_json::json!({"username": username, "password": password});
        if let Some(tenant) = tenant {
            body["tenant"] = tenant.into();
        }
        let reply = self.post_json("/api/v1/auth/token", None, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.text);
        reply.json()
    }

    pub async fn login_status(&self, tenant: Option<&str>, username: &str, password: &str) -> u16 {
        let mut body = serde_json::json!({"username": username, "password": password});
        if let Some(tenant) = tenant {
            body["tenant"] = tenant.into();
        }
        self.post_json("/api/v1/auth/token", None, &body)
            .await
            .status
            .as_u16()
    }

    /// Audit entries of the caller's log with `action`.
    pub async fn audit_entries(&self, token: &str, action: &str) -> Vec<Value> {
        let reply = self
            .get(
                &format!("/api/v1/audit-log?action={action}&limit=500"),
                Some(token),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["items"].as_array().unwrap().clone()
    }
}

impl TestApp {
    pub fn clock_now(&self) -> DateTime<Utc> {
        use stageflow::clock::Clock;
        self.clock.now()
    }
}
