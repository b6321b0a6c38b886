//! A thin JSON client for the server under test, and the tenant the load runs in.

use serde_json::{Value, json};

use crate::Res;
use crate::server::OPERATOR_PASSWORD;

/// One response, read whole.
pub struct Reply {
    pub status: u16,
    pub replayed: bool,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn id(&self) -> Option<String> {
        self.body["id"].as_str().map(str::to_owned)
    }
}

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    /// Sends one request. `Err` means no response arrived (the server died or was gone): the
    /// write may or may not have been applied.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            replayed,
            body,
            text,
        })
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
        let headers: Vec<(&str, String)> = key
            .map(|k| ("Idempotency-Key", k.to_owned()))
            .into_iter()
            .collect();
        self.send(reqwest::Method::POST, path, Some(body), &headers)
            .await
    }

    /// A read that must succeed (verification runs against a live server).
    pub async fn get(&self, path: &str) -> Res<Value> {
        let reply = self.send(reqwest::Method::GET, path, None, &[]).await?;
        if reply.status != 200 {
            return Err(format!("GET {path}: {} {}", reply.status, reply.text).into());
        }
        Ok(reply.body)
    }

    /// Every item of a paged list.
    pub async fn all(&self, path: &str) -> Res<Vec<Value>> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => {
                    self.get(&format!("{path}{separator}limit=500&cursor={c}"))
                        .await?
                }
                None => self.get(&format!("{path}{separator}limit=500")).await?,
            };
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(items),
            }
        }
    }

    /// A write that must succeed (set-up).
    async fn must_post(&self, path: &str, body: Value) -> Res<Value> {
        let reply = self.post(path, &body, None).await?;
        if !reply.ok() {
            return Err(format!("POST {path}: {} {}", reply.status, reply.text).into());
        }
        Ok(reply.body)
    }

    pub async fn login(
        client: &reqwest::Client,
        base: &str,
        tenant: Option<&str>,
        user: &str,
        password: &str,
    ) -> Res<Api> {
        let mut body = json!({"username": user, "password": password});
        if let Some(tenant) = tenant {
            body["tenant"] = tenant.into();
        }
        let reply = client
            .post(format!("{base}/api/v1/auth/token"))
            .json(&body)
            .send()
            .await?;
        let status = reply.status();
        let body: Value = reply.json().await?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| format!("login of {user} failed: {status} {body}"))?;
        Ok(Api {
            client: client.clone(),
            base: base.to_owned(),
            token: token.to_owned(),
        })
    }
}

pub const TENANT: &str = "crash";
pub const AGENT: &str = "agent";
const PASSWORD: &str = "crash-harness-user-passphrase";

fn label(text: &str) -> Value {
    json!({"ja": text, "en": text})
}

/// The process the load runs through: `start` fires an action (so a transition writes the
/// state, a field, two history entries and the field index at once), `finish` ends it.
fn template() -> Value {
    json!({
        "name": label("Crash"), "key_prefix": "CR",
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("Title")},
            {"key": "ref", "type": "text", "label": label("Reference")},
            {"key": "effort", "type": "integer", "label": label("Effort")}
        ],
        "stages": [{"key": "all", "label": label("All"), "states": [
            {"key": "new", "label": label("New"), "initial": true},
            {"key": "in_progress", "label": label("In progress")},
            {"key": "done", "label": label("Done"), "terminal": true}]}],
        "transitions": [
            {"key": "start", "label": label("Start"), "from": ["new"], "to": "in_progress",
             "allowed": {"roles": ["agent"]},
             "actions": [{"type": "set_field", "field": "effort", "value": 1}]},
            {"key": "finish", "label": label("Finish"), "from": ["in_progress"], "to": "done",
             "allowed": {"roles": ["agent"]}}
        ]
    })
}

fn library() -> Value {
    json!({
        "name": label("Notes"),
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("Title")},
            {"key": "body", "type": "long_text", "label": label("Body")}
        ],
        "title_field": "title",
        "layout": {"sections": [{"key": "main", "label": label("Main"), "fields": ["title", "body"]}]},
        "access": {"read": ["agent"], "write": ["agent"]}
    })
}

/// Creates the tenant, its process manager and agent, the library and the published template
/// on a fresh server.
pub async fn set_up(client: &reqwest::Client, base: &str) -> Res<()> {
    let operator = Api::login(client, base, None, "operator", OPERATOR_PASSWORD).await?;
    let plan = operator
        .must_post(
            "/api/v1/plans",
            json!({"name": "crash", "max_tenants": 1, "max_processes": 10, "max_users": 10}),
        )
        .await?;
    let account = operator
        .must_post(
            "/api/v1/accounts",
            json!({"name": "crash", "plan_id": plan["id"]}),
        )
        .await?;
    operator
        .must_post(
            "/api/v1/tenants",
            json!({"account_id": account["id"], "slug": TENANT, "name": "Crash", "time_zone": "UTC",
                "admin": {"username": "admin", "password": PASSWORD}}),
        )
        .await?;
    let admin = Api::login(client, base, Some(TENANT), "admin", PASSWORD).await?;
    for (user, role) in [("pm", "process_manager"), (AGENT, "agent")] {
        admin
            .must_post(
                "/api/v1/users",
                json!({"username": user, "password": PASSWORD, "display_name": user, "roles": [role]}),
            )
            .await?;
    }
    let pm = Api::login(client, base, Some(TENANT), "pm", PASSWORD).await?;
    pm.must_post(
        "/api/v1/libraries",
        json!({"key": "notes", "definition": library()}),
    )
    .await?;
    pm.must_post(
        "/api/v1/templates",
        json!({"key": "crash", "definition": template()}),
    )
    .await?;
    pm.must_post("/api/v1/templates/crash/versions/1/publish", json!({}))
        .await?;
    Ok(())
}

/// The agent's session (after every restart: a fresh login also proves the account survived).
pub async fn agent(client: &reqwest::Client, base: &str) -> Res<Api> {
    Api::login(client, base, Some(TENANT), AGENT, PASSWORD).await
}
