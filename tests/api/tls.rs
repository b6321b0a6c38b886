//! Built-in TLS (`STAGEFLOW_TLS_CERT`/`STAGEFLOW_TLS_KEY`) with a certificate made at test time,
//! start errors for unusable TLS files, and the security headers on every kind of response.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use stageflow::api::server::Application;
use stageflow::clock::ManualClock;
use stageflow::config::TlsFiles;

use crate::helpers::{Reply, TestApp, TestDb, spawn_app, spawn_app_with, start_time, test_config};

/// A self-signed certificate for 127.0.0.1, written as PEM files into `dir`; returns the files
/// and the certificate's PEM (for the client to trust).
fn self_signed(dir: &Path, name: &str) -> (TlsFiles, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_pem = made.cert.pem();
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, &cert_pem).unwrap();
    std::fs::write(&files.key, made.key_pair.serialize_pem()).unwrap();
    (files, cert_pem)
}

/// A client that trusts only `cert_pem`.
fn client_trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[track_caller]
fn assert_security_headers(reply: &Reply, hsts: bool) {
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(
        reply.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
    assert_eq!(
        reply.header("strict-transport-security").is_some(),
        hsts,
        "HSTS exactly when TLS is on: {:?}",
        reply.headers
    );
}

/// A normal response, an error (401 problem) and a 404.
async fn three_kinds(app: &TestApp) -> [Reply; 3] {
    let normal = app.get("/healthz", None).await;
    assert_eq!(normal.status, StatusCode::OK, "{}", normal.text);
    let error = app.get("/api/v1/tickets", None).await;
    error.assert_problem(401, "/problems/unauthorized");
    let missing = app.get("/no/such/path", None).await;
    missing.assert_problem(404, "/problems/not-found");
    [normal, error, missing]
}

#[actix_web::test]
async fn every_response_carries_the_security_headers_and_no_hsts_without_tls() {
    let app = spawn_app().await;
    for reply in three_kinds(&app).await {
        assert_security_headers(&reply, false);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    // Token responses are never cached.
    let token = app
        .post_json(
            "/api/v1/auth/token",
            None,
            &serde_json::json!({"username": crate::helpers::OPERATOR_USERNAME,
                "password": crate::helpers::OPERATOR_PASSWORD}),
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert_eq!(token.header("cache-control"), Some("no-store"));
    assert_security_headers(&token, false);
}

#[actix_web::test]
async fn the_server_terminates_tls_with_its_certificate_and_sends_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (files, cert_pem) = self_signed(dir.path(), "server");
    let mut app = spawn_app_with(|config| config.tls = Some(files)).await;
    assert!(app.address.starts_with("https://"), "{}", app.address);
    app.client = client_trusting(&cert_pem);
    for reply in three_kinds(&app).await {
        assert_security_headers(&reply, true);
        assert_eq!(
            reply.header("strict-transport-security"),
            Some("max-age=31536000; includeSubDomains")
        );
    }
    // A signed-in call works over TLS end to end.
    let operator = app.operator_token().await;
    let me = app.get("/api/v1/me", Some(&operator)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    // Plain HTTP on the TLS port gets no answer, and a client that does not trust the
    // certificate cannot connect.
    let plain = format!(
        "http://{}/healthz",
        app.address.trim_start_matches("https://")
    );
    assert!(reqwest::get(&plain).await.is_err());
    let (_, other_pem) = self_signed(dir.path(), "other");
    let stranger = client_trusting(&other_pem);
    assert!(stranger.get(app.url("/healthz")).send().await.is_err());
}

/// Starts the server with `files`; returns the start error's text.
async fn start_error(files: TlsFiles) -> String {
    let db = TestDb::create();
    let mut config = test_config(&db);
    config.tls = Some(files);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    match Application::build_with_listener(config, clock, listener).await {
        Ok(_) => panic!("the server started with unusable TLS files"),
        Err(error) => error.to_string(),
    }
}

#[actix_web::test]
async fn unusable_tls_files_stop_the_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = self_signed(dir.path(), "server");
    let (other, _) = self_signed(dir.path(), "other");
    // A key that belongs to another certificate.
    let error = start_error(TlsFiles {
        cert: server.cert.clone(),
        key: other.key.clone(),
    })
    .await;
    assert!(error.starts_with("STAGEFLOW_TLS_KEY:"), "{error}");
    assert!(error.contains("does not fit"), "{error}");
    // A certificate file that does not exist, or holds no certificate.
    let error = start_error(TlsFiles {
        cert: dir.path().join("missing.crt"),
        key: server.key.clone(),
    })
    .await;
    assert!(error.starts_with("STAGEFLOW_TLS_CERT:"), "{error}");
    let error = start_error(TlsFiles {
        cert: server.key.clone(),
        key: server.key.clone(),
    })
    .await;
    assert!(error.starts_with("STAGEFLOW_TLS_CERT:"), "{error}");
    // A key file with no key in it.
    let error = start_error(TlsFiles {
        cert: server.cert.clone(),
        key: server.cert.clone(),
    })
    .await;
    assert!(error.starts_with("STAGEFLOW_TLS_KEY:"), "{error}");
}

#[test]
fn one_tls_file_without_the_other_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    for (set, named) in [
        ("STAGEFLOW_TLS_CERT", "STAGEFLOW_TLS_KEY"),
        ("STAGEFLOW_TLS_KEY", "STAGEFLOW_TLS_CERT"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stageflow"))
            .env_clear()
            .current_dir(dir.path())
            .arg("serve")
            .env(set, dir.path().join("server.pem"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{set}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains(&format!("{named}: must be set too")),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("data").exists(), "nothing is created");
}
