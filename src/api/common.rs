//! Conventions shared by every endpoint: cursor pagination, ETag / If-Match, created responses.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::error::ApiError;
use crate::db::{Database, DbConnection};
use crate::domain::search::SearchQuery;
use crate::service::error::ServiceError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// `?limit=&cursor=` of every list endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// A validated page request: at most `limit` items after the position `after` (an id for most
/// lists; a list ordered otherwise names its own position type).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<P = uuid::Uuid> {
    pub limit: i64,
    pub after: Option<P>,
}

impl PageParams {
    /// The page of a list keyed by id.
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        self.parse_as()
    }

    /// The page of a list whose cursor holds a position of type `P`.
    pub fn parse_as<P: DeserializeOwned>(&self) -> Result<PageRequest<P>, ApiError> {
        let limit = page_limit(self.limit)?;
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageRequest { limit, after })
    }

    /// One more than the page size is fetched to learn whether another page follows.
    pub fn fetch_limit<P>(request: &PageRequest<P>) -> i64 {
        request.limit + 1
    }
}

impl<P: Serialize + Send + 'static> PageRequest<P> {
    /// Runs `query(conn, after, limit)` on the database and pages its rows; `limit` is one
    /// more than the page size, so the page knows whether another one follows. `key` gives a
    /// row's position (its id), `map` its response form.
    pub async fn load<R, T, Q>(
        self,
        db: &Database,
        query: Q,
        key: fn(&R) -> P,
        map: fn(R) -> T,
    ) -> Result<web::Json<Page<T>>, ApiError>
    where
        R: Send + 'static,
        T: ToSchema,
        Q: FnOnce(&mut DbConnection, Option<P>, i64) -> Result<Vec<R>, ServiceError>
            + Send
            + 'static,
    {
        self.try_load(db, query, key, move |row| Ok(map(row))).await
    }

    /// [`PageRequest::load`] with a response form that may fail (a stored value outside its
    /// closed set).
    pub async fn try_load<R, T, Q>(
        self,
        db: &Database,
        query: Q,
        key: fn(&R) -> P,
        map: impl Fn(R) -> Result<T, ApiError>,
    ) -> Result<web::Json<Page<T>>, ApiError>
    where
        R: Send + 'static,
        T: ToSchema,
        Q: FnOnce(&mut DbConnection, Option<P>, i64) -> Result<Vec<R>, ServiceError>
            + Send
            + 'static,
    {
        let limit = self.limit;
        let rows = db
            .read(move |conn| query(conn, self.after, limit + 1).map_err(ApiError::from))
            .await?;
        Ok(web::Json(Page::try_from_rows(rows, limit, key, map)?))
    }
}

/// One page of a list, in the order the endpoint documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// Builds a page of at most `limit` items from rows fetched with one more (see
    /// [`PageParams::fetch_limit`]); `key` gives each row's position, which the next cursor
    /// holds.
    pub fn from_rows<R, P: Serialize>(
        rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> P,
        map: impl Fn(R) -> T,
    ) -> Self {
        match Self::try_from_rows(rows, limit, key, |row| {
            Ok::<T, std::convert::Infallible>(map(row))
        }) {
            Ok(page) => page,
            Err(never) => match never {},
        }
    }

    /// [`Page::from_rows`] with a mapping that may fail (a stored value outside its closed
    /// set).
    pub fn try_from_rows<R, P: Serialize, E>(
        mut rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> P,
        map: impl Fn(R) -> Result<T, E>,
    ) -> Result<Self, E> {
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            rows.last().map(|row| encode_cursor(&key(row)))
        } else {
            None
        };
        Ok(Self {
            items: rows.into_iter().map(map).collect::<Result<_, E>>()?,
            next_cursor,
        })
    }
}

/// The ETag of a resource at `version`.
pub fn etag(version: i64) -> String {
    crate::service::idempotency::entity_tag(version)
}

/// The version named by `If-Match`, if the request has one. `*` matches any version.
///
/// If-Match compares strongly (RFC 9110 §13.1.1): a weak tag (`W/"3"`) never matches, so it
/// is 412 whatever the version; a value that is not an entity tag (`"3`, `3`) is 400.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Malformed("If-Match is not valid text.".to_owned()))?
        .trim();
    if value == "*" {
        return Ok(None);
    }
    let (weak, tag) = match value.strip_prefix("W/") {
        Some(tag) => (true, tag),
        None => (false, value),
    };
    let version = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::Malformed("If-Match must be an ETag from this API, e.g. \"3\".".to_owned())
        })?;
    if weak {
        return Err(ApiError::PreconditionFailed);
    }
    Ok(Some(version))
}

/// 200 with the body and its ETag.
pub fn ok_with_etag<T: Serialize>(body: &T, version: i64) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// 201 with the body, its ETag and its location.
pub fn created<T: Serialize>(body: &T, version: i64, location: String) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::ETAG, etag(version)))
        .insert_header((header::LOCATION, location))
        .json(body)
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit null
/// (`Some(None)`).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Most `field.<key>=` filters in one list query.
pub const MAX_FIELD_FILTERS: usize = 8;
/// Longest `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// Reads a list query: the named parameters into `T`, and the `field.<key>=<value>` (or
/// `field[<key>]=<value>`) filters
/// (up to [`MAX_FIELD_FILTERS`], keys checked) in order. Parameters named in `ignored` are
/// read elsewhere (e.g. the export's `format`).
pub fn list_query<T: serde::de::DeserializeOwned>(
    pairs: &[(String, String)],
    ignored: &[&str],
) -> Result<(T, Vec<(String, String)>), ApiError> {
    let mut named = Vec::new();
    let mut fields = Vec::new();
    for (k, v) in pairs {
        if let Some(field) = field_filter_key(k) {
            if !crate::domain::template::is_key(field) {
                return Err(ApiError::validation(k, "invalid", "not a field key"));
            }
            if fields.len() >= MAX_FIELD_FILTERS {
                return Err(ApiError::validation(
                    k,
                    "too_many",
                    format!("at most {MAX_FIELD_FILTERS} field filters"),
                ));
            }
            fields.push((field.to_owned(), v.clone()));
        } else if !ignored.contains(&k.as_str()) {
            named.push((k.as_str(), v.as_str()));
        }
    }
    let encoded = serde_urlencoded::to_string(&named)
        .map_err(|_| ApiError::Malformed("The query string cannot be read.".to_owned()))?;
    let query: T = serde_urlencoded::from_str(&encoded)
        .map_err(|e| ApiError::validation("query", "invalid", format!("{e}")))?;
    Ok((query, fields))
}

/// The field key of a `field.<key>` or `field[<key>]` (OpenAPI `deepObject`) parameter.
fn field_filter_key(name: &str) -> Option<&str> {
    name.strip_prefix("field.").or_else(|| {
        name.strip_prefix("field[")
            .and_then(|rest| rest.strip_suffix(']'))
    })
}

/// The keyword search of a list: none when blank; 422 beyond [`MAX_QUERY_CHARS`] or when it
/// holds no word to search for (or more than eight).
pub fn search_query(q: Option<&str>) -> Result<Option<SearchQuery>, ApiError> {
    match q.map(str::trim).filter(|q| !q.is_empty()) {
        None => Ok(None),
        Some(q) if q.chars().count() > MAX_QUERY_CHARS => Err(ApiError::validation(
            "q",
            "too_long",
            format!("at most {MAX_QUERY_CHARS} characters"),
        )),
        Some(q) => SearchQuery::parse(q)
            .map(Some)
            .map_err(|_| ApiError::validation("q", "invalid", "give 1–8 words to search for")),
    }
}

/// The raw `(name, value)` pairs of a request's query string.
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map_err(|_| ApiError::Malformed("The query string cannot be read.".to_owned()))
}

/// The page size of a list request: 1–500, 50 when not given.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "range",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok(limit)
}

/// 422 for a cursor the list did not hand out.
pub fn bad_cursor() -> ApiError {
    ApiError::validation("cursor", "invalid", "is not a cursor returned by this list")
}

/// The one cursor encoding of every list: the position after which the next page starts, as
/// JSON in base64url. Clients treat it as opaque.
pub fn encode_cursor<P: Serialize>(position: &P) -> String {
    let json = serde_json::to_vec(position).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Reads a cursor made by [`encode_cursor`]; [`bad_cursor`] for anything else.
pub fn decode_cursor<P: DeserializeOwned>(raw: &str) -> Result<P, ApiError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad_cursor())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(
            decode_cursor::<uuid::Uuid>(&encode_cursor(&id)).ok(),
            Some(id)
        );
        assert!(decode_cursor::<uuid::Uuid>("nonsense!").is_err());
        let position = (3_i64, 2_i32);
        assert_eq!(
            decode_cursor::<(i64, i32)>(&encode_cursor(&position)).ok(),
            Some(position)
        );
    }

    #[test]
    fn limits_are_bounded() {
        let page = |limit| {
            PageParams {
                limit: Some(limit),
                cursor: None,
            }
            .parse()
        };
        assert!(page(0).is_err());
        assert!(page(501).is_err());
        assert_eq!(page(500).unwrap().limit, 500);
    }

    #[test]
    fn pages_know_when_more_follow() {
        let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
        let page: Page<String> = Page::from_rows(ids.clone(), 2, |id| *id, |id| id.to_string());
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_cursor, Some(encode_cursor(&ids[1])));
        let last: Page<String> =
            Page::from_rows(ids[..2].to_vec(), 2, |id| *id, |id| id.to_string());
        assert!(last.next_cursor.is_none());
    }
}
