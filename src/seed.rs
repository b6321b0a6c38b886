//! Benchmark data: `stageflow seed-tickets` fills an empty database with two tenants, the
//! catalog's incident, inquiry and service-request templates, and up to millions of tickets,
//! for bench/tickets.sh (docs/PERFORMANCE.md, "Tickets").
//!
//! Tickets are made by the same use case the API runs (`service::tickets::create_from`:
//! validation against the template and its masters, numbering, field index, search tokens,
//! history), but in write transactions of a thousand tickets instead of one per request, and
//! without HTTP, tokens or JSON bodies. A share of them is then put in later states directly
//! (`db::tickets::place_in_state`, one UPDATE per state), so lists filtered by state have
//! realistic selectivity; each gets one `transition` history entry (version 2, hours after
//! filing, a day and more for a closed one) so that statistics, reports and `as_of` have a
//! timeline to read. Values are drawn from a seeded RNG: the same `--tickets` and `--seed`
//! give the same data.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::auth::password::PasswordHasher;
use crate::auth::{Caller, Principal, TenantScope, UserPrincipal};
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::{Database, DbConnection, DbError};
use crate::domain::identity::{Role, RoleSet, TenantSlug, TimeZone};
use crate::domain::ids::{OperatorId, TemplateId, TicketId, UserId};
use crate::domain::template::{MasterItems, TemplateDefinition};
use crate::domain::ticket::Audience;
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;
use crate::service::tickets::{NewTicketRequest, TicketCaller, create_from, master_items};
use crate::service::{directory, platform, templates};

/// Catalog entries installed in each tenant, in the order the installer needs (a template is
/// published only once the templates it creates child tickets from exist).
const INSTALL_ORDER: [&str; 5] = [
    "itil_change",
    "itil_problem",
    "itil_incident",
    "customer_inquiry",
    "itil_service_request",
];
/// The templates tickets are spread over, with their shares in per cent.
const TICKET_TEMPLATES: [(&str, u32); 3] = [
    ("itil_incident", 50),
    ("customer_inquiry", 30),
    ("itil_service_request", 20),
];
/// Where tickets end up, per template: (state, share in per cent). The first is the initial
/// state; the others have every field they require set at creation.
const STATE_SHARES: [(&str, &[(&str, u32)]); 3] = [
    (
        "itil_incident",
        &[("new", 45), ("in_progress", 30), ("closed", 25)],
    ),
    ("customer_inquiry", &[("new", 50), ("in_progress", 50)]),
    ("itil_service_request", &[("new", 60), ("closed", 40)]),
];
const TENANTS: [&str; 2] = ["bench-a", "bench-b"];
const ADMIN_PASSWORD: &str = "bench-admin-passphrase-1";
const AGENT_PASSWORD: &str = "bench-agent-passphrase-1";
/// Ids of initial-state incidents exported for the transition benchmark (each takes one).
const MAX_TRANSITION_IDS: usize = 200_000;
/// Random ticket ids exported for the get-one benchmark.
const GET_IDS: usize = 20_000;

/// Words that titles and descriptions are made of. Two-character Japanese words are one
/// bigram token each; the longer ones several.
const JA_WORDS: [&str; 40] = [
    "障害",
    "申請",
    "接続",
    "印刷",
    "遅延",
    "停止",
    "更新",
    "設定",
    "確認",
    "変更",
    "依頼",
    "故障",
    "発生",
    "不具合",
    "交換",
    "契約",
    "請求書",
    "解約",
    "返品",
    "配送",
    "在庫",
    "見積",
    "承認",
    "権限",
    "端末",
    "画面",
    "帳票",
    "会議室",
    "貸与",
    "回線",
    "認証",
    "暗号化",
    "復旧",
    "バックアップ",
    "ログイン",
    "パスワード",
    "ネットワーク",
    "サーバー",
    "メール",
    "エラー",
];
const EN_WORDS: [&str; 40] = [
    "printer",
    "network",
    "login",
    "password",
    "error",
    "slow",
    "outage",
    "server",
    "email",
    "vpn",
    "invoice",
    "contract",
    "laptop",
    "account",
    "access",
    "timeout",
    "update",
    "backup",
    "database",
    "license",
    "monitor",
    "keyboard",
    "wifi",
    "firewall",
    "certificate",
    "disk",
    "memory",
    "report",
    "dashboard",
    "portal",
    "mobile",
    "badge",
    "storage",
    "cluster",
    "proxy",
    "browser",
    "calendar",
    "meeting",
    "shipment",
    "refund",
];
const JA_JOINERS: [&str; 6] = ["が", "の", "を", "で", "について", "に関する"];
/// The words the benchmark searches for; the seed reports how many tickets hold each.
pub const SEARCH_WORDS: [&str; 3] = ["障害", "申請", "printer"];

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub tickets: u64,
    pub batch: u64,
    pub seed: u64,
    pub out: PathBuf,
}

/// One tenant being filled.
struct TenantPlan {
    slug: &'static str,
    caller: TicketCaller,
    templates: Vec<SeedTemplate>,
    tickets: u64,
    rng_seed: u64,
}

/// A published template and what is needed to make its tickets.
struct SeedTemplate {
    key: &'static str,
    share: u32,
    id: TemplateId,
    version: i32,
    def: Arc<TemplateDefinition>,
    masters: MasterItems,
    /// (state, stage, terminal, share); the first is the initial state.
    states: Vec<(String, String, bool, u32)>,
}

/// What one tenant's seeding produced.
#[derive(Default)]
struct TenantResult {
    transition_ids: Vec<TicketId>,
    get_ids: Vec<TicketId>,
    seen: u64,
    word_hits: [u64; SEARCH_WORDS.len()],
    per_state: std::collections::BTreeMap<String, u64>,
}

fn err(context: &str) -> impl Fn(ServiceError) -> String + '_ {
    move |e| match e {
        ServiceError::Validation(errors) => format!("{context}: validation failed: {errors:?}"),
        other => format!("{context}: {other}"),
    }
}

/// Seeds an empty database (see the module documentation) and writes `options.out`.
pub fn seed_tickets(config: &Config, options: &SeedOptions) -> Result<(), String> {
    let (db, _) = crate::db::Database::open_and_migrate(config).map_err(|e| e.to_string())?;
    let passwords = PasswordHasher::new(config.argon2)?;
    let admin_hash = passwords.hash_blocking(ADMIN_PASSWORD)?;
    let agent_hash = passwords.hash_blocking(AGENT_PASSWORD)?;
    let now = Utc::now();
    let plans = db
        .write_blocking(|conn| provision(conn, &admin_hash, &agent_hash, options, now))
        .map_err(err("provisioning"))?;
    let started = Instant::now();
    let total: u64 = plans.iter().map(|p| p.tickets).sum();
    let progress = crate::progress::Progress::start("seed: tickets", total);
    let results: Vec<Result<TenantResult, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| s.spawn(|| seed_tenant(&db, plan, options, &progress)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a seeding thread panicked".to_owned()))
            })
            .collect()
    });
    progress.finish();
    let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "seeded {total} tickets in {elapsed:.0} s ({:.0} tickets/s)",
        total as f64 / elapsed.max(0.001)
    );
    analyze(&db)?;
    write_outputs(&db, &plans, &results, options, elapsed)
}

/// Plan, account, tenants, users and templates, in one transaction.
fn provision(
    conn: &mut DbConnection,
    admin_hash: &str,
    agent_hash: &str,
    options: &SeedOptions,
    now: DateTime<Utc>,
) -> Result<Vec<TenantPlan>, ServiceError> {
    for slug in TENANTS {
        if crate::db::platform::slug_taken(conn, slug)? {
            return Err(ServiceError::duplicate(format!(
                "tenant {slug} exists already: seed-tickets needs a fresh database"
            )));
        }
    }
    let op = crate::auth::command_line_operator(
        OperatorId::new_at(now),
        "seed-tickets",
        "Benchmark seeding",
    );
    let operator = op.operator()?.clone();
    let plan = platform::create_plan(
        conn,
        &op,
        &platform::PlanInput {
            name: "bench".to_owned(),
            max_tenants: 10,
            max_processes: 50,
            max_users: 1000,
            max_stored_bytes: None,
            max_import_rows: None,
            max_import_bytes: None,
        },
        now,
    )?;
    let account = platform::create_account(conn, &op, "bench", plan.id, now)?;
    let mut plans = Vec::new();
    for (index, slug) in TENANTS.iter().enumerate() {
        let input = platform::TenantInput {
            account_id: account.id,
            slug: TenantSlug::parse(slug).map_err(ServiceError::internal)?,
            name: format!("Bench {}", index + 1),
            time_zone: TimeZone::parse("Asia/Tokyo").map_err(ServiceError::internal)?,
            admin_username: "admin".to_owned(),
            admin_password_hash: admin_hash.to_owned(),
            admin_display_name: "Bench admin".to_owned(),
        };
        let (tenant, admin_id) = platform::create_tenant(conn, &op, &operator, &input, now)?;
        let scope = crate::auth::for_new_tenant(&operator, tenant.id);
        let admin = user_principal(scope, admin_id, "admin", Role::TenantAdmin)?;
        let agent = directory::create_user(
            conn,
            &admin,
            &scope,
            &directory::UserInput {
                username: "agent".to_owned(),
                password_hash: agent_hash.to_owned(),
                display_name: "Bench agent".to_owned(),
                email: None,
                roles: RoleSet::new([Role::Agent])
                    .ok_or_else(|| ServiceError::internal("empty role set"))?,
                organization_id: None,
            },
            now,
        )?;
        for key in INSTALL_ORDER {
            let entry = crate::catalog::entry(key)
                .ok_or_else(|| ServiceError::internal(format!("no catalog entry {key}")))?;
            let order = crate::catalog::install_order(entry);
            let installed = templates::install(conn, &admin, &scope, &order, true, now)?;
            if installed.template.published_version.is_none() {
                return Err(ServiceError::internal(format!(
                    "catalog entry {key} was installed but not published"
                )));
            }
        }
        let caller = TicketCaller {
            scope,
            audience: Audience::Staff,
            actor: Actor {
                kind: "user",
                id: Some(agent.id.into()),
                name: agent.username.clone(),
                client_addr: None,
            },
            user: Some(agent.id),
            organization: None,
            roles: vec![Role::Agent],
            groups: Vec::new(),
            worker: true,
        };
        let templates = seed_templates(conn, &scope)?;
        let share = options.tickets / TENANTS.len() as u64;
        let tickets = if index == 0 {
            options.tickets - share * (TENANTS.len() as u64 - 1)
        } else {
            share
        };
        plans.push(TenantPlan {
            slug,
            caller,
            templates,
            tickets,
            rng_seed: options.seed.wrapping_add(index as u64),
        });
    }
    Ok(plans)
}

fn user_principal(
    scope: TenantScope,
    id: UserId,
    username: &str,
    role: Role,
) -> Result<Principal, ServiceError> {
    Ok(Principal {
        caller: Caller::User(UserPrincipal {
            scope,
            id,
            username: username.to_owned(),
            display_name: username.to_owned(),
            roles: RoleSet::new([role]).ok_or_else(|| ServiceError::internal("empty role set"))?,
            organization_id: None,
            groups: Vec::new(),
        }),
        client_addr: None,
    })
}

fn seed_templates(
    conn: &mut DbConnection,
    scope: &TenantScope,
) -> Result<Vec<SeedTemplate>, ServiceError> {
    let cache = DefinitionCache::default();
    let mut out = Vec::new();
    for (key, share) in TICKET_TEMPLATES {
        let row = crate::db::templates::find_template(conn, scope, key)?
            .ok_or_else(|| ServiceError::internal(format!("template {key} missing")))?;
        let version = row
            .published_version
            .ok_or_else(|| ServiceError::internal(format!("template {key} not published")))?;
        let def = cache.get(conn, scope, row.id, version)?;
        let masters = master_items(conn, scope, &def, def.fields.iter().map(|f| &f.key))?;
        let shares = STATE_SHARES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| *s)
            .ok_or_else(|| ServiceError::internal(format!("no state shares for {key}")))?;
        let mut states = Vec::new();
        for (state, percent) in shares {
            let (stage, st) = def
                .states()
                .find(|(_, s)| s.key == *state)
                .ok_or_else(|| ServiceError::internal(format!("{key} has no state {state}")))?;
            states.push((st.key.clone(), stage.key.clone(), st.terminal, *percent));
        }
        out.push(SeedTemplate {
            key,
            share,
            id: row.id,
            version,
            def,
            masters,
            states,
        });
    }
    Ok(out)
}

/// One ticket to create, and the state it should end up in.
struct Planned {
    template: usize,
    request: NewTicketRequest,
    at: DateTime<Utc>,
    state: usize,
    words: [bool; SEARCH_WORDS.len()],
}

fn seed_tenant(
    db: &Database,
    plan: &TenantPlan,
    options: &SeedOptions,
    progress: &crate::progress::Progress,
) -> Result<TenantResult, String> {
    let mut rng = StdRng::seed_from_u64(plan.rng_seed);
    let mut result = TenantResult::default();
    // Creation times spread evenly over the two years before the seed date, oldest first, so
    // ids (UUID v7) and numbers grow together as they would in production.
    let first = Utc
        .with_ymd_and_hms(2024, 11, 26, 0, 0, 0)
        .single()
        .ok_or("bad start date")?;
    let span_ms = 2 * 365 * 24 * 3600 * 1000_i64;
    let step_ms = span_ms / i64::try_from(plan.tickets.max(1)).unwrap_or(i64::MAX);
    let mut done = 0_u64;
    while done < plan.tickets {
        let n = options.batch.min(plan.tickets - done);
        let batch: Vec<Planned> = (0..n)
            .map(|k| {
                let i = i64::try_from(done + k).unwrap_or(i64::MAX);
                let at = first + Duration::milliseconds(i.saturating_mul(step_ms));
                plan_ticket(&mut rng, &plan.templates, at)
            })
            .collect();
        let created = db
            .write_blocking(|conn| write_batch(conn, plan, &batch))
            .map_err(err(plan.slug))?;
        for (p, id) in batch.iter().zip(created) {
            result.seen += 1;
            for (hits, found) in result.word_hits.iter_mut().zip(p.words) {
                *hits += u64::from(found);
            }
            let template = &plan.templates[p.template];
            let state = &template.states[p.state].0;
            *result
                .per_state
                .entry(format!("{}/{state}", template.key))
                .or_default() += 1;
            if template.key == "itil_incident"
                && p.state == 0
                && result.transition_ids.len() < MAX_TRANSITION_IDS
            {
                result.transition_ids.push(id);
            }
            // Reservoir sample: every ticket equally likely to be in the get-one set.
            if result.get_ids.len() < GET_IDS {
                result.get_ids.push(id);
            } else {
                let j = rng.random_range(0..result.seen);
                if let Some(slot) = usize::try_from(j)
                    .ok()
                    .and_then(|j| result.get_ids.get_mut(j))
                {
                    *slot = id;
                }
            }
        }
        done += n;
        progress.inc(n);
    }
    Ok(result)
}

/// A ticket and when it was filed.
type Filed = (TicketId, DateTime<Utc>);

/// Creates one batch through the ticket use case, then puts the planned share in later
/// states.
fn write_batch(
    conn: &mut DbConnection,
    plan: &TenantPlan,
    batch: &[Planned],
) -> Result<Vec<TicketId>, ServiceError> {
    let mut ids = Vec::with_capacity(batch.len());
    let mut moves: Vec<(usize, usize, Vec<Filed>)> = Vec::new();
    for p in batch {
        let t = &plan.templates[p.template];
        let ticket = create_from(
            conn,
            &plan.caller,
            &t.id,
            t.version,
            t.def.clone(),
            &p.request,
            p.at,
            t.key,
        )?;
        let id = ticket.row.id;
        ids.push(id);
        if p.state > 0 {
            match moves
                .iter_mut()
                .find(|(tt, s, _)| *tt == p.template && *s == p.state)
            {
                Some((_, _, list)) => list.push((id, p.at)),
                None => moves.push((p.template, p.state, vec![(id, p.at)])),
            }
        }
    }
    for (template, state, list) in moves {
        let t = &plan.templates[template];
        let (state, stage, terminal, _) = &t.states[state];
        let placed: Vec<TicketId> = list.iter().map(|(id, _)| *id).collect();
        // Its history says how it got there: one move, hours after filing (a day and more
        // for a closed one), as version 2 — what statistics, reports and `as_of` read.
        let initial = &t.states[0].0;
        let after = if *terminal {
            Duration::hours(30)
        } else {
            Duration::hours(3)
        };
        let history: Vec<crate::db::tickets::NewHistory> = list
            .iter()
            .map(|(id, at)| crate::db::tickets::NewHistory {
                tenant_id: plan.caller.scope.tenant_id(),
                ticket_id: *id,
                ticket_version: 2,
                ordinal: 0,
                at: (*at + after).into(),
                actor_kind: plan.caller.actor.kind.to_owned(),
                actor_id: plan.caller.actor.id,
                actor_name: plan.caller.actor.name.clone(),
                kind: "transition".to_owned(),
                transition: None,
                from_state: Some(initial.clone()),
                to_state: Some(state.clone()),
                field: None,
                old_value: None,
                new_value: None,
                internal: false,
                state_since: Some((*at).into()),
                template_id: t.id,
                imported: None,
            })
            .collect();
        crate::db::tickets::insert_history(conn, &plan.caller.scope, &history)?;
        crate::db::tickets::place_in_state(
            conn,
            &plan.caller.scope,
            &placed,
            &crate::db::tickets::StatePlacement {
                state,
                stage,
                closed: *terminal,
            },
        )?;
    }
    Ok(ids)
}

/// An index drawn with the given weights.
fn pick_share(rng: &mut StdRng, shares: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = shares.clone().sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (i, share) in shares.enumerate() {
        if roll < share {
            return i;
        }
        roll -= share;
    }
    0
}

fn plan_ticket(rng: &mut StdRng, templates: &[SeedTemplate], at: DateTime<Utc>) -> Planned {
    let template = pick_share(rng, templates.iter().map(|t| t.share));
    let t = &templates[template];
    let state = pick_share(rng, t.states.iter().map(|s| s.3));
    let title = text(rng, 2, 4);
    let body = text(rng, 6, 14);
    let mut words = [false; SEARCH_WORDS.len()];
    for (found, word) in words.iter_mut().zip(SEARCH_WORDS) {
        *found = title.contains(word) || body.contains(word);
    }
    let mut fields = Map::new();
    fields.insert("title".into(), json!(title));
    let code = |rng: &mut StdRng, master: &str| -> Value {
        let codes: Vec<&String> = t
            .masters
            .get(master)
            .map(|set| set.iter().collect())
            .unwrap_or_default();
        codes
            .choose(rng)
            .map_or(Value::Null, |c| Value::String((*c).clone()))
    };
    match t.key {
        "itil_incident" => {
            fields.insert("description".into(), json!(body));
            for (field, master) in [
                ("source", "incident_source"),
                ("category", "category"),
                ("impact", "impact"),
                ("urgency", "urgency"),
                ("priority", "priority"),
            ] {
                fields.insert(field.into(), code(rng, master));
            }
            fields.insert("major_incident".into(), json!(rng.random_ratio(1, 50)));
        }
        "customer_inquiry" => {
            fields.insert("inquiry_body".into(), json!(body));
            fields.insert("channel".into(), code(rng, "inquiry_channel"));
            fields.insert("inquiry_category".into(), code(rng, "inquiry_category"));
            fields.insert("priority".into(), code(rng, "priority"));
            let n = rng.random_range(1..100_000);
            fields.insert("customer_name".into(), json!(format!("顧客 {n}")));
            fields.insert(
                "customer_email".into(),
                json!(format!("customer{n}@example.com")),
            );
        }
        _ => {
            fields.insert("description".into(), json!(body));
            fields.insert("request_item".into(), code(rng, "service_request_item"));
            fields.insert("priority".into(), code(rng, "priority"));
            fields.insert("quantity".into(), json!(rng.random_range(1..5)));
            fields.insert("approval_required".into(), json!(rng.random_ratio(1, 4)));
        }
    }
    fields.retain(|_, v| !v.is_null());
    Planned {
        template,
        request: NewTicketRequest {
            template: t.key.to_owned(),
            fields,
            ..NewTicketRequest::default()
        },
        at,
        state,
        words,
    }
}

/// `min..=max` words, Japanese and English mixed, Japanese words joined by particles.
fn text(rng: &mut StdRng, min: usize, max: usize) -> String {
    let n = rng.random_range(min..=max);
    let mut out = String::new();
    for i in 0..n {
        if rng.random_bool(0.5) {
            if let Some(w) = JA_WORDS.choose(rng) {
                out.push_str(w);
            }
            if i + 1 < n
                && let Some(j) = JA_JOINERS.choose(rng)
            {
                out.push_str(j);
            }
        } else {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            if let Some(w) = EN_WORDS.choose(rng) {
                out.push_str(w);
            }
            out.push(' ');
        }
    }
    out.trim().to_owned()
}

/// Refreshes the planner's statistics after the bulk load.
fn analyze(db: &Database) -> Result<(), String> {
    use diesel::connection::SimpleConnection;
    let started = Instant::now();
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let sql = match &mut **conn {
        DbConnection::Postgres(_) => "ANALYZE",
        DbConnection::Sqlite(_) => "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);",
    };
    conn.batch_execute(sql)
        .map_err(|e| format!("ANALYZE: {}", DbError::from(e)))?;
    eprintln!("ANALYZE took {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "bench-seed".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}-{suffix}"))
}

fn write_ids(path: &Path, ids: &[TicketId]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for id in ids {
        writeln!(w, "{}", id.0).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", path.display()))
}

fn write_outputs(
    db: &Database,
    plans: &[TenantPlan],
    results: &[TenantResult],
    options: &SeedOptions,
    elapsed: f64,
) -> Result<(), String> {
    if let Some(dir) = options.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut tenants = Vec::new();
    for (plan, result) in plans.iter().zip(results) {
        let transition_file = sibling(&options.out, &format!("{}-transition-ids.txt", plan.slug));
        let get_file = sibling(&options.out, &format!("{}-get-ids.txt", plan.slug));
        write_ids(&transition_file, &result.transition_ids)?;
        write_ids(&get_file, &result.get_ids)?;
        let hits: Map<String, Value> = SEARCH_WORDS
            .iter()
            .zip(result.word_hits)
            .map(|(w, n)| ((*w).to_owned(), json!(n)))
            .collect();
        tenants.push(json!({
            "slug": plan.slug,
            "admin": {"username": "admin", "password": ADMIN_PASSWORD},
            "agent": {"username": "agent", "password": AGENT_PASSWORD},
            "tickets": plan.tickets,
            "tickets_per_template_state": result.per_state,
            "tickets_holding_word": hits,
            "sample_ticket_ids": result.get_ids.iter().take(5).map(|id| id.0).collect::<Vec<_>>(),
            "transition_ids_file": transition_file,
            "transition_ids": result.transition_ids.len(),
            "get_ids_file": get_file,
        }));
    }
    let templates: BTreeSet<&str> = TICKET_TEMPLATES.iter().map(|(k, _)| *k).collect();
    let doc = json!({
        "backend": format!("{:?}", db.backend()).to_lowercase(),
        "tickets": options.tickets,
        "seed": options.seed,
        "seconds": elapsed.round(),
        "templates": templates,
        "installed": INSTALL_ORDER,
        "transition": {"template": "itil_incident", "from": "new", "key": "start_triage"},
        "tenants": tenants,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&options.out, text).map_err(|e| format!("{}: {e}", options.out.display()))?;
    for plan in plans {
        println!(
            "tenant {}: admin / {ADMIN_PASSWORD}, agent / {AGENT_PASSWORD}",
            plan.slug
        );
    }
    println!("wrote {}", options.out.display());
    Ok(())
}
