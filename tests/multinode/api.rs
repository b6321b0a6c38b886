//! A thin JSON client for the nodes, the tenant set-up with its webhook subscription, and the
//! two reads the checks need: the event feed and the subscription's delivery log.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Res;
use crate::node::OPERATOR_PASSWORD;

pub const TENANT: &str = "multinode";
pub const PASSWORD: &str = "multinode-harness-user-passphrase";

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
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

    /// The same session against another node (tokens are valid on every node).
    pub fn on(&self, base: &str) -> Api {
        Api {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    /// A POST; `Err` when no answer arrived (the node is gone).
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let reply = request.send().await?;
        let status = reply.status().as_u16();
        let text = reply.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// A write that must succeed (set-up).
    pub async fn must_post(&self, path: &str, body: Value) -> Res<Value> {
        let (status, reply) = self.post(path, &body, None).await?;
        if !(200..300).contains(&status) {
            return Err(format!("POST {path}: {status} {reply}").into());
        }
        Ok(reply)
    }

    pub async fn get(&self, path: &str) -> Res<Value> {
        let reply = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = reply.status();
        let text = reply.text().await?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Every event after `after` (the whole feed from the start with `None`): their ids in
    /// commit order, and the cursor after the last one.
    pub async fn events_after(&self, after: Option<&str>) -> Res<(Vec<String>, Option<String>)> {
        let mut ids = Vec::new();
        let mut cursor = after.map(str::to_owned);
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/events?limit=500&after={c}"),
                None => "/api/v1/events?limit=500".to_owned(),
            };
            let page = self.get(&path).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            ids.extend(
                items
                    .iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_owned)),
            );
            cursor = page["next_cursor"].as_str().map(str::to_owned).or(cursor);
            if items.is_empty() {
                return Ok((ids, cursor));
            }
        }
    }

    /// The ids of every ticket of a template.
    pub async fn ticket_ids(&self, template: &str) -> Res<Vec<String>> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/tickets?limit=500&template={template}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path).await?;
            for t in page["items"].as_array().cloned().unwrap_or_default() {
                ids.push(t["id"].as_str().unwrap_or_default().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(ids),
            }
        }
    }

    /// Every event of one type in the feed.
    pub async fn events_of_type(&self, event_type: &str) -> Res<Vec<Value>> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/events?limit=500&type={event_type}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&after={c}"));
            }
            let page = self.get(&path).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(events);
            }
            events.extend(items);
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                return Ok(events);
            }
        }
    }

    /// The subscription's delivery log: each delivery's event id and status.
    pub async fn deliveries(&self, webhook: &str) -> Res<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let base = format!("/api/v1/webhooks/{webhook}/deliveries?limit=500");
            let page = match &cursor {
                Some(c) => self.get(&format!("{base}&cursor={c}")).await?,
                None => self.get(&base).await?,
            };
            for d in page["items"].as_array().cloned().unwrap_or_default() {
                let field = |name: &str| d[name].as_str().unwrap_or_default().to_owned();
                out.push((field("event_id"), field("status")));
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(out),
            }
        }
    }
}

/// Deliveries per status.
pub fn by_status(deliveries: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, status) in deliveries {
        *counts.entry(status.clone()).or_insert(0) += 1;
    }
    counts
}

fn label(text: &str) -> Value {
    json!({"ja": text, "en": text})
}

fn template() -> Value {
    json!({
        "name": label("Multinode"), "key_prefix": "MN",
        "fields": [
            {"key": "title", "type": "text", "required": true, "label": label("Title")}
        ],
        "stages": [{"key": "all", "label": label("All"), "states": [
            {"key": "new", "label": label("New"), "initial": true},
            {"key": "done", "label": label("Done"), "terminal": true}]}],
        "transitions": [
            {"key": "finish", "label": label("Finish"), "from": ["new"], "to": "done",
             "allowed": {"roles": ["agent"]}}
        ]
    })
}

/// What the set-up leaves: the agent's session, the admin's, the subscription and where
/// the feed stood before it existed (every later event must be delivered).
pub struct Tenant {
    pub agent: Api,
    pub admin: Api,
    pub webhook_id: String,
    pub feed_start: Option<String>,
}

/// Operator → plan, account, tenant (with its admin) → the webhook subscription (all event
/// types) → users and a published template, through the first node.
pub async fn set_up(
    client: &reqwest::Client,
    base: &str,
    receiver: &crate::receiver::Receiver,
) -> Res<Tenant> {
    let operator = Api::login(client, base, None, "operator", OPERATOR_PASSWORD).await?;
    let plan = operator
        .must_post(
            "/api/v1/plans",
            json!({"name": "multinode", "max_tenants": 1, "max_processes": 10, "max_users": 10}),
        )
        .await?;
    let account = operator
        .must_post(
            "/api/v1/accounts",
            json!({"name": "multinode", "plan_id": plan["id"]}),
        )
        .await?;
    operator
        .must_post(
            "/api/v1/tenants",
            json!({"account_id": account["id"], "slug": TENANT, "name": "Multinode",
                "time_zone": "UTC", "admin": {"username": "admin", "password": PASSWORD}}),
        )
        .await?;
    let admin = Api::login(client, base, Some(TENANT), "admin", PASSWORD).await?;
    let (_, feed_start) = admin.events_after(None).await?;
    let hook = admin
        .must_post(
            "/api/v1/webhooks",
            json!({"url": receiver.url(), "description": "multinode harness"}),
        )
        .await?;
    let secret = hook["secret"].as_str().ok_or("no webhook secret")?;
    receiver.set_secret(secret);
    let webhook_id = hook["id"].as_str().ok_or("no webhook id")?.to_owned();
    for (user, role) in [("pm", "process_manager"), ("agent", "agent")] {
        admin
            .must_post(
                "/api/v1/users",
                json!({"username": user, "password": PASSWORD, "display_name": user,
                    "roles": [role]}),
            )
            .await?;
    }
    let pm = Api::login(client, base, Some(TENANT), "pm", PASSWORD).await?;
    pm.must_post(
        "/api/v1/templates",
        json!({"key": "mn", "definition": template()}),
    )
    .await?;
    pm.must_post("/api/v1/templates/mn/versions/1/publish", json!({}))
        .await?;
    let agent = Api::login(client, base, Some(TENANT), "agent", PASSWORD).await?;
    Ok(Tenant {
        agent,
        admin,
        webhook_id,
        feed_start,
    })
}
