//! The one export mechanism of the list endpoints (tickets, library records, users, master
//! items): `format=csv|jsonl`, the CSV's `encoding`, the cell format the import reads back,
//! streaming for UTF-8, and the CP932 rule (rendered whole in memory, refused with the located
//! characters it cannot hold rather than sent with replacements).

use std::future::Future;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToResponse};

use crate::api::error::{ApiError, FieldError, Problem};
use crate::domain::tabular::{self, TextEncoding, text_cell};

/// Rows fetched per database round trip while exporting.
pub const EXPORT_PAGE: i64 = 500;

/// Most rows a CP932 export holds: it is rendered whole in memory before the first byte is
/// sent, so that a character CP932 cannot hold is a 422 rather than a broken file.
pub const CP932_MAX_ROWS: usize = 200_000;

/// Most unencodable characters one refusal lists.
pub const MAX_UNENCODABLE: usize = 100;

/// The query parameters the export reads itself; list queries pass over them.
pub const EXPORT_PARAMS: [&str; 3] = ["format", "encoding", "bom"];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `csv` (the default): a header row, then one row per item; `jsonl`: JSON Lines, one
    /// JSON object per line (UTF-8), each exactly the item the list returns.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// The CSV's character encoding: `utf-8` (the default), `utf-8-bom` (UTF-8 starting with
    /// a byte order mark, which Excel needs to read UTF-8) or `cp932` (Shift_JIS as Excel on
    /// Japanese Windows writes it; at most 200,000 rows, and a character CP932 cannot hold
    /// refuses the whole export with 422 `unencodable` entries naming row and column).
    #[param(inline)]
    pub encoding: Option<TextEncoding>,
    /// The same as `encoding=utf-8-bom` (kept for existing clients); with another `encoding`
    /// it is a 422.
    #[serde(default)]
    pub bom: bool,
}

crate::domain::closed_set::closed_set! {
    /// The file format of an export.
    pub enum ExportFormat {
        Csv = "csv",
        Jsonl = "jsonl",
    }
}

/// What an export writes, read from [`ExportParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Csv(TextEncoding),
    Jsonl,
}

impl ExportParams {
    /// The file to write; 422 when `encoding` and `bom` disagree, or when an encoding other
    /// than UTF-8 is asked of JSON Lines.
    pub fn shape(&self) -> Result<Shape, ApiError> {
        let encoding = match (self.encoding, self.bom) {
            (Some(e), true) if e != TextEncoding::Utf8Bom => {
                return Err(ApiError::validation(
                    "encoding",
                    "conflict",
                    format!("bom=true means utf-8-bom; it cannot go with encoding={e}"),
                ));
            }
            (_, true) => Some(TextEncoding::Utf8Bom),
            (e, false) => e,
        };
        match self.format.unwrap_or(ExportFormat::Csv) {
            ExportFormat::Csv => Ok(Shape::Csv(encoding.unwrap_or(TextEncoding::Utf8))),
            ExportFormat::Jsonl => match encoding {
                None | Some(TextEncoding::Utf8) => Ok(Shape::Jsonl),
                Some(e) => Err(ApiError::validation(
                    "encoding",
                    "invalid",
                    format!("JSON Lines is always UTF-8 without a byte order mark, not {e}"),
                )),
            },
        }
    }
}

/// 422 for the paging parameters of a list, which an export does not take.
pub fn refuse_paging(limit: Option<i64>, cursor: Option<&str>) -> Result<(), ApiError> {
    let field = match (limit, cursor) {
        (_, Some(_)) => "cursor",
        (Some(_), None) => "limit",
        (None, None) => return Ok(()),
    };
    Err(ApiError::validation(
        field,
        "invalid",
        "an export has every matching item; it takes no cursor or limit",
    ))
}

/// A field value as a cell — the format the import reads back: null is empty, text and the
/// `;`-joined items of a multi-select are neutralised ([`text_cell`]), booleans are
/// `true`/`false`, numbers are written as JSON writes them (they cannot carry a formula).
pub fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => text_cell(s.clone()),
        Value::Array(items) => text_cell(
            items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(";"),
        ),
        other => other.to_string(),
    }
}

/// An instant as a cell: RFC 3339 in UTC, whole seconds.
pub fn time_cell(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An optional id or instant as a cell: empty when absent.
pub fn optional_cell<T>(value: Option<T>, cell: impl FnOnce(T) -> String) -> String {
    value.map(cell).unwrap_or_default()
}

/// The rows an export walks, a page at a time, as the caller may see them.
pub trait Pages: 'static {
    /// One exported item: a JSON Lines line is exactly its JSON.
    type Item: Serialize;
    /// The next page; empty when every matching item has been returned.
    fn next_page(&mut self) -> impl Future<Output = Result<Vec<Self::Item>, ApiError>>;
    /// The CSV header row; asked after the first page (a library's columns come with it).
    fn header(&self) -> Vec<String>;
    /// One item's CSV cells, in the order of [`Pages::header`].
    fn cells(&self, item: &Self::Item) -> Vec<String>;
}

/// The export response: `name.csv` or `name.jsonl` as an attachment. The first page is read
/// before answering, so that its errors (404, 422) are still problem documents; UTF-8 is
/// streamed page by page from there; CP932 is rendered whole first (see [`CP932_MAX_ROWS`]).
pub async fn respond<P: Pages>(
    shape: Shape,
    name: &str,
    mut pages: P,
) -> Result<HttpResponse, ApiError> {
    let first = pages.next_page().await?;
    // Keys are safe already; this keeps the header safe whatever a path held.
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let (content_type, extension) = match shape {
        Shape::Jsonl => ("application/x-ndjson", "jsonl"),
        Shape::Csv(TextEncoding::Cp932) => ("text/csv; charset=Shift_JIS", "csv"),
        Shape::Csv(_) => ("text/csv; charset=utf-8", "csv"),
    };
    let mut response = HttpResponse::Ok();
    response.content_type(content_type).insert_header((
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}.{extension}\""),
    ));
    if shape == Shape::Csv(TextEncoding::Cp932) {
        return Ok(response.body(cp932_file(first, pages).await?));
    }
    let mut head = Vec::new();
    if let Shape::Csv(encoding) = shape {
        // The encoding's preamble: the byte order mark of utf-8-bom, nothing for utf-8.
        head = tabular::encode("", encoding, 1).map_err(|_| ApiError::internal("bom"))?;
        head.extend(csv_rows(std::iter::once(pages.header()))?);
    }
    head.extend(render(shape, &pages, &first)?);
    let rest = futures_util::stream::unfold(
        (!first.is_empty()).then_some(pages),
        move |state| async move {
            let mut pages = state?;
            let page = match pages.next_page().await {
                Ok(page) if page.is_empty() => return None,
                Ok(page) => page,
                Err(e) => return Some((Err(broken(e)), None)),
            };
            match render(shape, &pages, &page) {
                Ok(bytes) => Some((Ok(web::Bytes::from(bytes)), Some(pages))),
                Err(e) => Some((Err(broken(e)), None)),
            }
        },
    );
    use futures_util::StreamExt;
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        )
        .chain(rest);
    Ok(response.streaming(body))
}

/// An error after the response has started: logged, and the connection is cut so the client
/// sees an incomplete download rather than a short file.
fn broken(e: ApiError) -> actix_web::Error {
    log::error!("export cut off: {e}");
    actix_web::error::ErrorInternalServerError("export failed")
}

/// One page as UTF-8 CSV rows or JSON Lines.
fn render<P: Pages>(shape: Shape, pages: &P, items: &[P::Item]) -> Result<Vec<u8>, ApiError> {
    match shape {
        Shape::Csv(_) => csv_rows(items.iter().map(|item| pages.cells(item))),
        Shape::Jsonl => {
            let mut out = Vec::new();
            for item in items {
                serde_json::to_writer(&mut out, item).map_err(ApiError::internal)?;
                out.push(b'\n');
            }
            Ok(out)
        }
    }
}

fn csv_rows(rows: impl Iterator<Item = Vec<String>>) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for row in rows {
        out.write_record(&row)
            .map_err(|e| ApiError::internal(format!("csv: {e}")))?;
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(format!("csv: {e}")))
}

/// The whole CP932 file, or the 422 naming (up to [`MAX_UNENCODABLE`]) characters it cannot
/// hold. Rows are numbered as a spreadsheet shows them: the header is row 1.
async fn cp932_file<P: Pages>(first: Vec<P::Item>, mut pages: P) -> Result<Vec<u8>, ApiError> {
    let header = pages.header();
    let mut file = Cp932File {
        bytes: Vec::new(),
        errors: Vec::new(),
        rows: 0,
    };
    file.append(&header, vec![header.clone()])?;
    let mut page = first;
    while !page.is_empty() && file.errors.len() < MAX_UNENCODABLE {
        if file.rows + page.len() > CP932_MAX_ROWS + 1 {
            return Err(ApiError::validation(
                "encoding",
                "too_many_rows",
                format!(
                    "a cp932 export holds at most {CP932_MAX_ROWS} rows; narrow the filter or \
                     export as utf-8-bom"
                ),
            ));
        }
        file.append(&header, page.iter().map(|item| pages.cells(item)).collect())?;
        page = pages.next_page().await?;
    }
    if file.errors.is_empty() {
        Ok(file.bytes)
    } else {
        Err(ApiError::Validation(file.errors))
    }
}

struct Cp932File {
    bytes: Vec<u8>,
    errors: Vec<FieldError>,
    /// Rows written so far, the header included.
    rows: usize,
}

impl Cp932File {
    fn append(&mut self, header: &[String], rows: Vec<Vec<String>>) -> Result<(), ApiError> {
        let first_row = self.rows + 1;
        self.rows += rows.len();
        let text = csv_rows(rows.iter().cloned())?;
        let text = String::from_utf8(text).map_err(ApiError::internal)?;
        if self.errors.is_empty()
            && let Ok(bytes) = tabular::encode(&text, TextEncoding::Cp932, 1)
        {
            self.bytes.extend(bytes);
            return Ok(());
        }
        // Only a failing page is looked at cell by cell, to name where the characters are.
        for (i, row) in rows.iter().enumerate() {
            for (cell, column) in row.iter().zip(header) {
                let room = MAX_UNENCODABLE.saturating_sub(self.errors.len());
                if room == 0 {
                    return Ok(());
                }
                if let Err(found) = tabular::encode(cell, TextEncoding::Cp932, room) {
                    self.errors.extend(found.iter().map(|u| {
                        FieldError::new(
                            format!("row {}, column {column}", first_row + i),
                            "unencodable",
                            format!(
                                "U+{:04X} '{}' has no CP932 form",
                                u32::from(u.character),
                                u.character
                            ),
                        )
                    }));
                }
            }
        }
        Ok(())
    }
}

/// Well-formed but invalid query, or a `cp932` export that cannot be written: `errors` has one
/// entry per offending parameter, or per character CP932 cannot hold (`unencodable`, the
/// first 100, located by spreadsheet row — the header is row 1 — and column name).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/validation", "title": "Unprocessable Entity", "status": 422,
        "detail": "The request content is not valid; see errors.",
        "errors": [{"field": "row 2, column title", "code": "unencodable",
            "message": "U+2764 '❤' has no CP932 form"}]})
)]
pub struct ExportUnprocessable(pub Problem);

#[cfg(test)]
mod tests {
    use super::*;

    fn params(
        format: Option<ExportFormat>,
        encoding: Option<TextEncoding>,
        bom: bool,
    ) -> ExportParams {
        ExportParams {
            format,
            encoding,
            bom,
        }
    }

    #[test]
    fn format_encoding_and_bom_make_one_shape() {
        use ExportFormat::{Csv, Jsonl};
        use TextEncoding::{Cp932, Utf8, Utf8Bom};
        let cases = [
            (None, None, false, Some(Shape::Csv(Utf8))),
            (Some(Csv), None, true, Some(Shape::Csv(Utf8Bom))),
            (None, Some(Utf8Bom), true, Some(Shape::Csv(Utf8Bom))),
            (None, Some(Cp932), false, Some(Shape::Csv(Cp932))),
            (None, Some(Cp932), true, None),
            (None, Some(Utf8), true, None),
            (Some(Jsonl), None, false, Some(Shape::Jsonl)),
            (Some(Jsonl), Some(Utf8), false, Some(Shape::Jsonl)),
            (Some(Jsonl), Some(Cp932), false, None),
            (Some(Jsonl), None, true, None),
        ];
        for (format, encoding, bom, expected) in cases {
            let shape = params(format, encoding, bom).shape().ok();
            assert_eq!(shape, expected, "{format:?} {encoding:?} bom={bom}");
        }
    }

    #[test]
    fn cells_are_written_as_the_import_reads_them() {
        let cells: Vec<String> = [
            Value::Null,
            serde_json::json!("=1+1"),
            serde_json::json!(["a", "b"]),
            serde_json::json!(["-a", "b"]),
            serde_json::json!(true),
            serde_json::json!(1.5),
            serde_json::json!(-3),
        ]
        .iter()
        .map(csv_cell)
        .collect();
        assert_eq!(cells, ["", "'=1+1", "a;b", "'-a;b", "true", "1.5", "-3"]);
        let at = DateTime::parse_from_rfc3339("2026-11-26T18:00:00.250+09:00").unwrap();
        assert_eq!(time_cell(at.with_timezone(&Utc)), "2026-11-26T09:00:00Z");
    }

    /// `count` one-cell rows in pages of 500; `text` in every cell.
    struct Fake {
        left: usize,
        text: &'static str,
    }

    impl Pages for Fake {
        type Item = String;

        async fn next_page(&mut self) -> Result<Vec<String>, ApiError> {
            let n = self.left.min(500);
            self.left -= n;
            Ok(vec![self.text.to_owned(); n])
        }

        fn header(&self) -> Vec<String> {
            vec!["name".to_owned()]
        }

        fn cells(&self, item: &String) -> Vec<String> {
            vec![item.clone()]
        }
    }

    fn cp932(left: usize, text: &'static str) -> Result<Vec<u8>, ApiError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut pages = Fake { left, text };
            let first = pages.next_page().await?;
            cp932_file(first, pages).await
        })
    }

    #[test]
    fn a_cp932_export_is_capped() {
        let at_cap = cp932(CP932_MAX_ROWS, "ok").unwrap();
        assert_eq!(at_cap.len(), "name\n".len() + CP932_MAX_ROWS * "ok\n".len());
        let Err(ApiError::Validation(errors)) = cp932(CP932_MAX_ROWS + 1, "ok") else {
            panic!("over the cap")
        };
        assert_eq!(errors[0].code, "too_many_rows");
    }

    #[test]
    fn at_most_a_hundred_unencodable_characters_are_named() {
        let Err(ApiError::Validation(errors)) = cp932(1000, "❤❤") else {
            panic!("unencodable")
        };
        assert_eq!(errors.len(), MAX_UNENCODABLE);
        assert_eq!(errors[0].field, "row 2, column name");
        assert_eq!(errors[1].field, "row 2, column name");
        assert_eq!(errors[99].field, "row 51, column name");
        assert_eq!(
            cp932(2, "東京").unwrap(),
            b"name\n\x93\x8c\x8b\x9e\n\x93\x8c\x8b\x9e\n"
        );
    }
}
