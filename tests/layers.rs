//! Imports point down only. This test reads every source file under `src/`, finds each
//! `crate::<module>` it names (in `use` lines and in paths) and fails when a layer names a
//! module it may not depend on. The table below is the rule; docs/ARCHITECTURE.md shows the
//! same table.
//!
//! Layers, top to bottom: the composition root (`main`, `lib`, `seed`) →
//! `api` → `jobs` → `service` → `auth` → `db` → `domain`. Leaf helpers (`clock`, `config`,
//! `storage`, `usage`, `catalog`, `outbound`, `scanner`, `mailer`, `metrics`, `progress`) may be used from every layer
//! that lists them.

use std::fs;
use std::path::{Path, PathBuf};

/// Which top-level modules each layer may name (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "root",
        &[
            "service", "auth", "db", "domain", "seed", "clock", "config", "storage", "usage",
            "catalog", "jobs", "outbound", "scanner", "mailer", "metrics", "progress",
        ],
    ),
    (
        "api",
        &[
            "service", "auth", "db", "domain", "clock", "config", "storage", "usage", "catalog",
            "jobs", "outbound", "scanner", "mailer", "metrics",
        ],
    ),
    (
        "jobs",
        &[
            "service", "auth", "db", "domain", "clock", "config", "storage", "usage", "outbound",
            "scanner", "mailer", "metrics", "progress",
        ],
    ),
    (
        "service",
        &[
            "auth", "db", "domain", "clock", "config", "storage", "usage", "catalog", "outbound",
            "scanner", "mailer", "metrics", "progress",
        ],
    ),
    ("auth", &["db", "domain", "clock", "config", "metrics"]),
    ("db", &["domain", "clock", "config", "metrics"]),
    ("domain", &[]),
    ("clock", &[]),
    ("storage", &[]),
    ("outbound", &["domain"]),
    ("scanner", &[]),
    ("metrics", &[]),
    ("progress", &[]),
    ("mailer", &["domain"]),
    ("catalog", &["domain"]),
    ("config", &["db", "domain", "scanner", "mailer"]),
    ("usage", &["db", "domain"]),
];

/// Named exceptions: (file or directory prefix under `src/`, exact path it may name, why).
const EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "db/",
    "crate::auth::TenantScope",
    "every tenant query takes the scope first; it stays constructible only in auth/",
)];

/// The API layer may name the database's types (rows, filters, `Database` to run a use case)
/// but never call a query: no `db::<module>::<function>(` and no import of the `db` module.
fn api_calls_db(line: &str) -> bool {
    let mut rest = line;
    while let Some(at) = rest.find("db::") {
        let preceded_by_ident = at > 0
            && rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let after = &rest[at + 4..];
        rest = after;
        if preceded_by_ident {
            continue;
        }
        let segments: Vec<&str> = after
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .collect();
        let last = segments.last().copied().unwrap_or("");
        let call = segments.len() >= 2
            && last.starts_with(|c: char| c.is_ascii_lowercase())
            && after[segments.join("::").len()..].starts_with('(');
        if call {
            return true;
        }
    }
    let trimmed = line.trim();
    trimmed == "use crate::db;" || trimmed.starts_with("use crate::db::{self")
}

fn layer_of(relative: &str) -> &'static str {
    let first = relative.split('/').next().unwrap_or("");
    let module = first.strip_suffix(".rs").unwrap_or(first);
    match module {
        "main" | "lib" | "seed" | "logging" | "memory" => "root",
        "api" => "api",
        "jobs" => "jobs",
        "service" => "service",
        "auth" => "auth",
        "db" => "db",
        "domain" => "domain",
        "clock" => "clock",
        "storage" => "storage",
        "outbound" => "outbound",
        "scanner" => "scanner",
        "mailer" => "mailer",
        "metrics" => "metrics",
        "progress" => "progress",
        "catalog" => "catalog",
        "config" => "config",
        "usage" => "usage",
        _ => "unknown",
    }
}

/// Every `crate::…` path a line names, as written (`crate::{a, b::C}` gives `crate::a` and
/// `crate::b::C`).
fn crate_paths(line: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + 7..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut depth = 0;
            let mut start = 0;
            let inner = &group[..end];
            for (i, c) in inner
                .char_indices()
                .chain(std::iter::once((inner.len(), ',')))
            {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let item = inner[start..i].trim();
                        if !item.is_empty() {
                            paths.push(format!("crate::{item}"));
                        }
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            let path: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(format!("crate::{}", path.trim_end_matches(':')));
        }
        rest = after;
    }
    paths
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file under `src/`, sorted: its path relative to `src/` and its text.
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let relative = file
                .strip_prefix(&src)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/");
            (relative, fs::read_to_string(&file).unwrap_or_default())
        })
        .collect()
}

fn violations() -> Vec<String> {
    let mut found = Vec::new();
    for (relative, text) in sources() {
        let layer = layer_of(&relative);
        let allowed = ALLOWED
            .iter()
            .find(|(name, _)| *name == layer)
            .map(|(_, allowed)| *allowed);
        let Some(allowed) = allowed else {
            found.push(format!(
                "src/{relative}: not in any layer; add its module to ALLOWED in tests/layers.rs"
            ));
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if layer == "api" && api_calls_db(code) {
                found.push(format!(
                    "src/{relative}:{}: a handler calls the database (`{}`); rule: api may name \
                     db types but runs queries only through a service use case",
                    number + 1,
                    code.trim()
                ));
            }
            for path in crate_paths(code) {
                let module = path.split("::").nth(1).unwrap_or("");
                let target = layer_of(&format!("{module}.rs"));
                if target == layer || allowed.contains(&module) || allowed.contains(&target) {
                    continue;
                }
                let excepted = EXCEPTIONS.iter().any(|(prefix, exact, _)| {
                    relative.starts_with(prefix)
                        && (path == *exact || path.starts_with(&format!("{exact}::")))
                });
                if !excepted {
                    found.push(format!(
                        "src/{relative}:{}: `{path}` — rule: {layer} may import only [{}]",
                        number + 1,
                        allowed.join(", ")
                    ));
                }
            }
        }
    }
    found
}

/// Where a tenant scope may be made from a bare tenant id (`auth::job_scope`): background
/// work that chooses its tenant itself (a job's payload, a loop over tenants). A request
/// handler gets its scope only from the verified credential (`Principal::require`), so the
/// API layer, the composition root and the storage layer never call it.
const JOB_SCOPE_CALLERS: &[&str] = &["auth/", "jobs/", "service/"];

/// Lines outside `allowed` that mint a scope from a tenant id.
fn job_scope_calls(allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (relative, text) in sources() {
        if allowed.iter().any(|p| relative.starts_with(p)) {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && code.contains("job_scope(") {
                found.push(format!("src/{relative}:{}: `{}`", number + 1, code.trim()));
            }
        }
    }
    found
}

#[test]
fn only_background_work_makes_a_scope_from_a_tenant_id() {
    let found = job_scope_calls(JOB_SCOPE_CALLERS);
    assert!(
        found.is_empty(),
        "auth::job_scope outside {JOB_SCOPE_CALLERS:?}:\n{}",
        found.join("\n")
    );
    // The scan itself sees the calls that are allowed (jobs and services use it).
    let everywhere = job_scope_calls(&[]);
    assert!(
        everywhere.iter().any(|l| l.starts_with("src/jobs/"))
            && everywhere.iter().any(|l| l.starts_with("src/service/")),
        "{everywhere:?}"
    );
}

#[test]
fn imports_point_down_only() {
    let found = violations();
    assert!(
        found.is_empty(),
        "{} upward import(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_reader_sees_grouped_and_plain_paths() {
    assert_eq!(
        crate_paths("use crate::{api::error::ApiError, db};"),
        vec!["crate::api::error::ApiError", "crate::db"]
    );
    assert_eq!(
        crate_paths("let x = crate::service::error::check_version(a, b)?;"),
        vec!["crate::service::error::check_version"]
    );
    assert!(api_calls_db("db::users::find(conn, &scope, id)"));
    assert!(!api_calls_db(
        "use crate::db::users::{UserFilter, UserRow};"
    ));
    assert!(!api_calls_db("state.db.read(move |conn| svc::get(conn))"));
}

/// The file allowed to use `unsafe` (one audited `mallopt` call, ADR-36).
const UNSAFE_ALLOWED_IN: &str = "memory.rs";

#[test]
fn unsafe_code_stays_in_its_one_file() {
    let mut found = Vec::new();
    let mut seen_allowed = false;
    for (relative, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let unsafe_here = code.contains("unsafe {")
                || code.contains("unsafe fn")
                || code.contains("unsafe impl")
                || code.contains("unsafe extern")
                || code.contains("allow(unsafe_code)");
            if !unsafe_here {
                continue;
            }
            if relative == UNSAFE_ALLOWED_IN {
                seen_allowed = true;
            } else {
                found.push(format!("src/{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe outside src/{UNSAFE_ALLOWED_IN}:\n{}",
        found.join("\n")
    );
    // The scan itself sees the allowed use.
    assert!(
        seen_allowed,
        "the scan found no unsafe in src/{UNSAFE_ALLOWED_IN}"
    );
}
