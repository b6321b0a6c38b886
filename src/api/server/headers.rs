//! Security headers on every response — handler results, problem documents, 404s and errors
//! raised by other middleware alike. The content security policy is chosen per path here, in
//! this one table, so a future HTML page (API docs) loosens it for its own path only.

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::api::state::AppState;

/// The policy for JSON: nothing may be loaded, nothing may frame the response.
const CSP_NONE: &str = "default-src 'none'; frame-ancestors 'none'";

/// Path prefixes with a policy of their own, first match wins; every other path gets
/// [`CSP_NONE`].
const CSP_BY_PATH: &[(&str, &str)] = &[
    (
        crate::api::docs_page::PATH,
        crate::api::docs_page::CONTENT_SECURITY_POLICY,
    ),
    (
        crate::api::reports::PATH,
        crate::api::reports::CONTENT_SECURITY_POLICY,
    ),
];

/// One year, with subdomains: sent only when this server terminates TLS itself.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The content security policy for a request path.
pub fn content_security_policy(path: &str) -> &'static str {
    CSP_BY_PATH
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or(CSP_NONE, |(_, policy)| policy)
}

/// The middleware (`middleware::from_fn`), outermost: handler errors, extractor errors and
/// the fallback's 404/405 are responses by the time they pass here. (No inner layer fails
/// with an `Err`; the request cannot be kept to build one, as cloning it breaks routing.)
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path().to_owned();
    let tls = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.config.tls.is_some());
    let mut response = next.call(req).await?;
    apply(response.headers_mut(), &path, tls);
    Ok(response)
}

/// `Stageflow-Maintenance` on every response while an announced maintenance window runs for
/// the caller: windows for every tenant on all responses, a tenant's own windows on its
/// authenticated ones (the credential's tenant, noted by the `Principal` extractor). The
/// value lists each running window as an RFC 3339 interval, `start/end`, comma-separated.
pub async fn maintenance_window(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut response = next.call(req).await?;
    let Some(state) = state else {
        return Ok(response);
    };
    let tenant = response
        .request()
        .extensions()
        .get::<crate::api::extract::RequestTenant>()
        .map(|t| t.0);
    let running = state.maintenance.active(tenant, state.clock.now());
    if running.is_empty() {
        return Ok(response);
    }
    let value = running
        .iter()
        .map(|w| {
            format!(
                "{}/{}",
                w.starts_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                w.ends_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(MAINTENANCE_HEADER), value);
    }
    Ok(response)
}

/// The maintenance window header's name (lower case, as HTTP/2 sends it).
pub const MAINTENANCE_HEADER: &str = "stageflow-maintenance";

fn apply(headers: &mut HeaderMap, path: &str, tls: bool) {
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(path),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Responses are per caller (tokens, tenant data): no shared or browser cache keeps them,
    // unless a handler said otherwise. ETags still serve `If-Match`.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_get_the_strict_policy() {
        assert_eq!(content_security_policy("/api/v1/tickets"), CSP_NONE);
        assert_eq!(content_security_policy("/openapi.json"), CSP_NONE);
    }

    #[test]
    fn hsts_only_with_tls_and_cache_control_kept() {
        let mut plain = HeaderMap::new();
        apply(&mut plain, "/", false);
        assert!(!plain.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(plain.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let mut tls = HeaderMap::new();
        tls.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        apply(&mut tls, "/", true);
        assert_eq!(tls.get(header::STRICT_TRANSPORT_SECURITY).unwrap(), HSTS);
        assert_eq!(tls.get(header::CACHE_CONTROL).unwrap(), "max-age=60");
    }
}
