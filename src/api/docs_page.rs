//! The API reference page, `/api/docs`: Redoc (through `utoipa-redoc`) rendering the same
//! document as `/api/v1/openapi.json`. Every asset is embedded in the binary (the vendored
//! bundle in `assets/redoc/`), so the page loads nothing from elsewhere, and the page's own
//! script is a file rather than inline, so its content security policy forbids inline scripts.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa_redoc::{Redoc, Servable};

/// Where the page is served.
pub const PATH: &str = "/api/docs";

/// The page's policy: its own scripts, inline styles (Redoc styles with them), its search
/// worker from a blob, and nothing from another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; worker-src blob:; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/redoc/index.html");
const REDOC: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");
const INIT: &[u8] = include_bytes!("../../assets/redoc/init.js");

/// The page (with `document` embedded) and its two scripts.
pub fn services(document: serde_json::Value) -> impl HttpServiceFactory {
    (
        Redoc::with_url(PATH, document).custom_html(PAGE),
        web::resource("/api/docs/redoc.standalone.js").route(web::get().to(redoc_bundle)),
        web::resource("/api/docs/init.js").route(web::get().to(init_script)),
    )
}

fn script(body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}

async fn redoc_bundle() -> HttpResponse {
    script(REDOC)
}

async fn init_script() -> HttpResponse {
    script(INIT)
}
