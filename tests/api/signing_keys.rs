//! Access-token signing keys: nothing in a copy of the database can sign a token, the public
//! keys are published for offline checks, and a rotation keeps sessions alive.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::TimeDelta;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stageflow::auth::keys::{self, MasterKey};
use stageflow::db::DatabaseUrl;

use crate::helpers::{TestApp, spawn_app};

const BINARY: &str = env!("CARGO_BIN_EXE_stageflow");

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// Every text value of `platform_settings` and `signing_keys`, read straight from the
/// database as someone holding a copy of it would.
fn stored_values(app: &TestApp) -> Vec<String> {
    let queries = [
        "SELECT key AS value FROM platform_settings",
        "SELECT value FROM platform_settings",
        "SELECT kid AS value FROM signing_keys",
        "SELECT algorithm AS value FROM signing_keys",
        "SELECT public_key AS value FROM signing_keys",
        "SELECT private_key AS value FROM signing_keys",
    ];
    let mut values = Vec::new();
    for query in queries {
        let rows: Vec<TextRow> = match app.db.url() {
            DatabaseUrl::Postgres(url) => diesel::sql_query(query)
                .load(&mut diesel::PgConnection::establish(&url).unwrap())
                .unwrap(),
            DatabaseUrl::Sqlite(path) => diesel::sql_query(query)
                .load(&mut diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap())
                .unwrap(),
        };
        values.extend(rows.into_iter().map(|r| r.value));
    }
    values
}

fn stored_kids(app: &TestApp) -> Vec<String> {
    let mut conn = app.state.db.get().unwrap();
    stageflow::db::signing_keys::list(&mut conn)
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn header(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header
}

/// The Ed25519 private key in PKCS#8 form, if `bytes` are a 32-byte seed.
fn ed25519_pkcs8(bytes: &[u8]) -> Option<Vec<u8>> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let seed = <[u8; 32]>::try_from(bytes).ok()?;
    let der = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .ok()?;
    Some(der.as_bytes().to_vec())
}

async fn status_of(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/me", Some(token)).await.status
}

#[actix_web::test]
async fn nothing_in_a_copy_of_the_database_mints_an_operator_token() {
    let app = spawn_app().await;
    let token = app.operator_token().await;
    assert_eq!(status_of(&app, &token).await, StatusCode::OK);
    let mut claims = claims_of(&token);
    claims["jti"] = json!(uuid::Uuid::now_v7());
    let values = stored_values(&app);
    let kids = stored_kids(&app);
    assert!(!kids.is_empty());
    assert!(
        !values.iter().any(|v| v == "jwt_secret"),
        "the plaintext secret of earlier versions is gone"
    );

    let mut tried = 0;
    for value in &values {
        for kid in kids.iter().map(|k| Some(k.as_str())).chain([None]) {
            // The value as an HMAC secret, under the real key id and without one.
            for alg in [Algorithm::HS256, Algorithm::HS512] {
                let secret = EncodingKey::from_secret(value.as_bytes());
                let forged = jsonwebtoken::encode(&header(alg, kid), &claims, &secret).unwrap();
                assert_eq!(status_of(&app, &forged).await, StatusCode::UNAUTHORIZED);
                tried += 1;
            }
            // The value, decoded, as an Ed25519 private key.
            let decoded = [STANDARD.decode(value), URL_SAFE_NO_PAD.decode(value)];
            for bytes in decoded.into_iter().flatten() {
                let candidates = [ed25519_pkcs8(&bytes), Some(bytes.clone())];
                for der in candidates.into_iter().flatten() {
                    let key = EncodingKey::from_ed_der(&der);
                    if let Ok(forged) =
                        jsonwebtoken::encode(&header(Algorithm::EdDSA, kid), &claims, &key)
                    {
                        assert_eq!(status_of(&app, &forged).await, StatusCode::UNAUTHORIZED);
                        tried += 1;
                    }
                }
            }
        }
    }
    assert!(tried >= 16, "only {tried} forgeries tried");

    // The same minting with the master key, which is not in the database, is accepted: the
    // forgeries above failed for want of the key, not because the minting was wrong.
    let master_text = std::fs::read_to_string(app.db.data_dir().join("master.key")).unwrap();
    let master =
        MasterKey::from_bytes(&stageflow::config::decode_master_key(&master_text).unwrap());
    let row = stageflow::db::signing_keys::list(&mut app.state.db.get().unwrap())
        .unwrap()
        .remove(0);
    let opened = keys::open_private(&master, &row).unwrap();
    let minted = jsonwebtoken::encode(
        &header(Algorithm::EdDSA, Some(&row.kid)),
        &claims,
        &EncodingKey::from_ed_der(&opened.pkcs8_der),
    )
    .unwrap();
    assert_eq!(status_of(&app, &minted).await, StatusCode::OK);
}

#[actix_web::test]
async fn tokens_verify_offline_against_the_published_key_set() {
    let app = spawn_app().await;
    let token = app.operator_token().await;
    let reply = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let cache = reply.header("cache-control").unwrap();
    assert!(cache.contains("max-age="), "{cache}");
    let body = reply.json();
    let key = &body["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], kid_of(&token).as_str());
    assert!(key.get("d").is_none(), "no private part is published");

    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(body).unwrap();
    let jwk = set.find(&kid_of(&token)).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["stageflow-api"]);
    validation.set_issuer(&["stageflow"]);
    // The test clock is not the wall clock; expiry is checked by the server.
    validation.validate_exp = false;
    let verified =
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
    assert_eq!(verified.claims["kind"], "operator");
}

/// Rotates as `stageflow keys rotate` does, at the test clock's time.
async fn rotate(app: &TestApp) -> String {
    let state = app.state.clone();
    let now = app.clock_now();
    actix_web::rt::task::spawn_blocking(move || {
        stageflow::service::bootstrap::rotate_signing_key(&state.db, &state.config, now)
    })
    .await
    .unwrap()
    .unwrap()
    .kid
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let body = app.get("/.well-known/jwks.json", None).await.json();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn rotation_keeps_sessions_valid_and_new_tokens_carry_the_new_kid() {
    let app = spawn_app().await;
    let _tenant = app.tenant("acme").await;
    let session = app
        .login_pair(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let old_access = session["access_token"].as_str().unwrap();
    let old_kid = kid_of(old_access);

    let new_kid = rotate(&app).await;
    assert_ne!(new_kid, old_kid);
    // A minute later the node has reloaded its keys; the old token still works.
    app.clock.advance(TimeDelta::seconds(61));
    assert_eq!(status_of(&app, old_access).await, StatusCode::OK);
    let fresh = app
        .login(Some("acme"), "admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    assert_eq!(kid_of(&fresh), new_kid);
    assert_eq!(
        published_kids(&app).await,
        vec![new_kid.clone(), old_kid.clone()]
    );
    // The refresh token of the session from before the rotation still refreshes.
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(
        kid_of(refreshed.json()["access_token"].as_str().unwrap()),
        new_kid
    );
    let operator = app.operator_token().await;
    let rotations = app.audit_entries(&operator, "signing_key.rotated").await;
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0]["target_id"], new_kid.as_str());
    assert_eq!(rotations[0]["target_kind"], "signing_key");

    // Once no token of the old key can be valid, it is no longer published or accepted.
    app.clock.advance(TimeDelta::seconds(900 + 120));
    assert_eq!(published_kids(&app).await, vec![new_kid.clone()]);
    assert_eq!(status_of(&app, old_access).await, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn unknown_keys_and_other_algorithms_are_refused() {
    let app = spawn_app().await;
    let token = app.operator_token().await;
    let claims = claims_of(&token);
    let kid = kid_of(&token);
    let jwks = app.get("/.well-known/jwks.json", None).await.json();
    let public_x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();

    // A key of another installation, under its own kid and under ours.
    let foreign_master = MasterKey::from_bytes(&[3; 32]);
    let foreign_row = keys::new_key_pair(&foreign_master, app.clock_now()).unwrap();
    let foreign = keys::open_private(&foreign_master, &foreign_row).unwrap();
    let foreign_key = EncodingKey::from_ed_der(&foreign.pkcs8_der);
    let unknown_kid = jsonwebtoken::encode(
        &header(Algorithm::EdDSA, Some(&foreign_row.kid)),
        &claims,
        &foreign_key,
    )
    .unwrap();
    let our_kid =
        jsonwebtoken::encode(&header(Algorithm::EdDSA, Some(&kid)), &claims, &foreign_key).unwrap();
    // Our own signature without a kid.
    let parts: Vec<&str> = token.split('.').collect();
    let no_kid = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    // HS256 keyed with the public key (algorithm confusion), and alg none.
    let confused = jsonwebtoken::encode(
        &header(Algorithm::HS256, Some(&kid)),
        &claims,
        &EncodingKey::from_secret(public_x.as_bytes()),
    )
    .unwrap();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)),
        parts[1]
    );
    for forged in [unknown_kid, our_kid, no_kid, confused, none] {
        app.get("/api/v1/me", Some(&forged))
            .await
            .assert_problem(401, "/problems/unauthorized");
    }
    assert_eq!(status_of(&app, &token).await, StatusCode::OK);
}

/// The binary, run against the test app's database and data directory.
fn stageflow(app: &TestApp) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("DATABASE_URL", app.db.url_string())
        .env("STAGEFLOW_DATA_DIR", app.db.data_dir())
        .env("RUST_LOG", "warn");
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn the_command_line_rotates_and_running_servers_pick_it_up() {
    let app = spawn_app().await;
    let token = app.operator_token().await;
    let old_kid = kid_of(&token);

    let (ok, out, err) = run(stageflow(&app).args(["keys", "rotate"]));
    assert!(ok, "{out}{err}");
    let new_kid = out.split_whitespace().nth(2).unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let (ok, listed, err) = run(stageflow(&app).args(["keys", "list"]));
    assert!(ok, "{err}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with(&new_kid) && lines[0].ends_with("signing"),
        "{listed}"
    );
    assert!(
        lines[1].starts_with(&old_kid) && lines[1].contains("retired"),
        "{listed}"
    );

    // The running server: the old token still works, and within a minute it signs with the
    // new key, without a restart.
    assert_eq!(status_of(&app, &token).await, StatusCode::OK);
    app.clock.advance(TimeDelta::seconds(61));
    assert_eq!(status_of(&app, &token).await, StatusCode::OK);
    assert_eq!(kid_of(&app.operator_token().await), new_kid);

    // Refusals name their cause in one line.
    let (ok, _, err) = run(stageflow(&app)
        .args(["keys", "rotate"])
        .env("STAGEFLOW_MASTER_KEY", STANDARD.encode([5u8; 32])));
    assert!(!ok);
    assert!(
        err.contains("master key cannot decrypt signing key"),
        "{err}"
    );
    let (ok, _, err) = run(stageflow(&app).args(["keys", "list"]).env(
        "STAGEFLOW_JWT_SECRET",
        "an-old-secret-an-old-secret-an-old-secret",
    ));
    assert!(!ok);
    assert!(
        err.contains("STAGEFLOW_JWT_SECRET") && err.contains("STAGEFLOW_MASTER_KEY"),
        "{err}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let loose = app.db.data_dir().join("loose.key");
        std::fs::copy(app.db.data_dir().join("master.key"), &loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (ok, _, err) = run(stageflow(&app)
            .args(["keys", "rotate"])
            .env("STAGEFLOW_MASTER_KEY_FILE", &loose));
        assert!(!ok);
        assert!(err.contains("readable by others"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[actix_web::test]
async fn a_server_refuses_to_start_with_another_master_key() {
    let app = spawn_app().await;
    let mut config = crate::helpers::test_config(&app.db);
    config.master_key = stageflow::config::MasterKeySource::Inline([8; 32]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let clock = std::sync::Arc::new(stageflow::clock::ManualClock::new(app.clock_now()));
    let error = stageflow::api::server::Application::build_with_listener(config, clock, listener)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("master key cannot decrypt signing key"),
        "{error}"
    );
    // A missing key file is not silently replaced while the database holds keys.
    let mut config = crate::helpers::test_config(&app.db);
    config.master_key = stageflow::config::MasterKeySource::File {
        path: app.db.data_dir().join("elsewhere").join("master.key"),
        default: false,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let clock = std::sync::Arc::new(stageflow::clock::ManualClock::new(app.clock_now()));
    let error = stageflow::api::server::Application::build_with_listener(config, clock, listener)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("master key"), "{error}");
    assert!(
        !app.db
            .data_dir()
            .join("elsewhere")
            .join("master.key")
            .exists()
    );
}

#[actix_web::test]
async fn the_operator_rotates_over_http_and_the_node_signs_with_the_new_key_at_once() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let operator = app.operator_token().await;
    let old_kid = kid_of(&operator);
    app.post_json("/api/v1/signing-keys", None, &json!({}))
        .await
        .assert_problem(401, "/problems/unauthorized");
    app.post_json(
        "/api/v1/signing-keys",
        Some(&tenant.admin_token),
        &json!({}),
    )
    .await
    .assert_problem(403, "/problems/forbidden");

    let created = app
        .post_json("/api/v1/signing-keys", Some(&operator), &json!({}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let created = created.json();
    assert_eq!(created["algorithm"], "EdDSA");
    assert!(created.get("private_key").is_none());
    let new_kid = created["kid"].as_str().unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(kid_of(&app.operator_token().await), new_kid);
    assert_eq!(status_of(&app, &operator).await, StatusCode::OK);
    assert_eq!(status_of(&app, &tenant.admin_token).await, StatusCode::OK);
    let rotations = app.audit_entries(&operator, "signing_key.rotated").await;
    assert_eq!(rotations[0]["actor"]["kind"], "operator");
    assert_eq!(rotations[0]["target_id"], new_kid);
}
