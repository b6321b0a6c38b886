//! Column types that differ between the backends, and the storage of the typed ids.
//!
//! PostgreSQL stores uuids, instants and JSON natively (`uuid`, `timestamptz`, `jsonb`); SQLite
//! stores them as TEXT (hyphenated uuid; RFC 3339 UTC with exactly six fractional digits, which
//! sorts chronologically as text; compact JSON). Each SQL type below names both representations
//! and implements the conversions for PostgreSQL, SQLite and the `MultiBackend` of
//! [`super::DbConnection`].

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow, Queryable};
use diesel::expression::AsExpression;
use diesel::internal::derives::as_expression::Bound;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{HasSqlType, Text};
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::MultiBackend;
use crate::domain::ids::*;

/// `uuid` on PostgreSQL, TEXT on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbUuid;

/// `timestamptz` on PostgreSQL, RFC 3339 TEXT on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbTimestamp;

/// `jsonb` on PostgreSQL, TEXT on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbJson;

macro_rules! multi_backend_type {
    ($sql:ident) => {
        impl HasSqlType<$sql> for MultiBackend {
            fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
                MultiBackend::lookup_sql_type::<$sql>(lookup)
            }
        }
    };
}

/// The `MultiBackend` conversions dispatch to the per-backend ones below.
macro_rules! multi_backend_value {
    ($rust:ty, $sql:ident) => {
        impl FromSql<$sql, MultiBackend> for $rust {
            fn from_sql(
                bytes: <MultiBackend as Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                bytes.from_sql::<$rust, $sql>()
            }
        }

        impl ToSql<$sql, MultiBackend> for $rust {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value(($sql, self));
                Ok(IsNull::No)
            }
        }
    };
}

multi_backend_type!(DbUuid);
multi_backend_type!(DbTimestamp);
multi_backend_type!(DbJson);

// Both representations order as time does (RFC 3339 TEXT in UTC has a fixed width), so
// `MIN`/`MAX` work on them.
impl diesel::sql_types::SqlOrd for DbTimestamp {}

// --- uuid -------------------------------------------------------------------------------------

impl ToSql<DbUuid, Pg> for Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(self, out)
    }
}

impl FromSql<DbUuid, Pg> for Uuid {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(bytes)
    }
}

impl ToSql<DbUuid, Sqlite> for Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Uuid {
    fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(bytes)?;
        Ok(Uuid::parse_str(&text)?)
    }
}

multi_backend_value!(Uuid, DbUuid);

// --- timestamps -------------------------------------------------------------------------------

/// An instant in UTC, microsecond precision (see [`crate::clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = DbTimestamp)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The SQLite text form: fixed width, so text order is time order.
    pub fn to_sqlite_text(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self(crate::clock::truncate(at))
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(at: Timestamp) -> Self {
        at.0
    }
}

impl ToSql<DbTimestamp, Pg> for Timestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<diesel::sql_types::Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<DbTimestamp, Pg> for Timestamp {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<diesel::sql_types::Timestamptz, Pg>>::from_sql(bytes).map(Self)
    }
}

impl ToSql<DbTimestamp, Sqlite> for Timestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_sqlite_text());
        Ok(IsNull::No)
    }
}

impl FromSql<DbTimestamp, Sqlite> for Timestamp {
    fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(bytes)?;
        Ok(Self(
            DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc),
        ))
    }
}

multi_backend_value!(Timestamp, DbTimestamp);

// --- JSON -------------------------------------------------------------------------------------

/// A JSON document column.
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow)]
#[diesel(sql_type = DbJson)]
pub struct Json(pub serde_json::Value);

impl ToSql<DbJson, Pg> for Json {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<diesel::sql_types::Jsonb, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<DbJson, Pg> for Json {
    fn from_sql(bytes: <Pg as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<diesel::sql_types::Jsonb, Pg>>::from_sql(bytes).map(Self)
    }
}

impl ToSql<DbJson, Sqlite> for Json {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(&self.0)?);
        Ok(IsNull::No)
    }
}

impl FromSql<DbJson, Sqlite> for Json {
    fn from_sql(bytes: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(bytes)?;
        Ok(Self(serde_json::from_str(&text)?))
    }
}

multi_backend_value!(Json, DbJson);

// --- typed ids --------------------------------------------------------------------------------

/// Stores a typed id of [`crate::domain::ids`] through [`DbUuid`]: what `#[derive(AsExpression,
/// FromSqlRow)]` would give (value, reference and double-reference forms, nullable too), the
/// backend conversions, and `new_at`, which needs this process's v7 counter. The `Bound`
/// expression is the one diesel's own derive emits.
macro_rules! stored_id {
    ($($name:ident),* $(,)?) => {$(
        impl $name {
            /// A new time-ordered (v7) id for a row created at `at`.
            pub fn new_at(at: DateTime<Utc>) -> Self {
                Self(uuid_v7_at(at))
            }
        }

        stored_id!(@expression $name, DbUuid);
        stored_id!(@expression $name, diesel::sql_types::Nullable<DbUuid>);

        impl<DB> ToSql<diesel::sql_types::Nullable<DbUuid>, DB> for $name
        where
            DB: Backend,
            Self: ToSql<DbUuid, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                ToSql::<DbUuid, DB>::to_sql(self, out)
            }
        }

        impl<DB> ToSql<DbUuid, DB> for $name
        where
            DB: Backend,
            Uuid: ToSql<DbUuid, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB> FromSql<DbUuid, DB> for $name
        where
            DB: Backend,
            Uuid: FromSql<DbUuid, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                Uuid::from_sql(bytes).map(Self)
            }
        }

        impl<DB, ST> Queryable<ST, DB> for $name
        where
            DB: Backend,
            ST: diesel::sql_types::SingleValue,
            Self: FromSql<ST, DB>,
        {
            type Row = Self;

            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }
    )*};
    (@expression $name:ident, $sql:ty) => {
        impl AsExpression<$sql> for $name {
            type Expression = Bound<$sql, Self>;

            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }

        impl<'a> AsExpression<$sql> for &'a $name {
            type Expression = Bound<$sql, Self>;

            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }

        impl<'a, 'b> AsExpression<$sql> for &'b &'a $name {
            type Expression = Bound<$sql, Self>;

            fn as_expression(self) -> Self::Expression {
                Bound::new(self)
            }
        }
    };
}

crate::domain::ids::for_each_typed_id!(stored_id);

/// A UUID v7 whose time part is `at`, so ids sort by creation time even when the clock is
/// injected. Ids made by this process are strictly increasing, also within one millisecond
/// (a shared counter), so "order by id" is creation order — lists and cursors rely on it.
pub fn uuid_v7_at(at: DateTime<Utc>) -> Uuid {
    static CONTEXT: std::sync::Mutex<uuid::ContextV7> =
        std::sync::Mutex::new(uuid::ContextV7::new());
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    let context = CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
    Uuid::new_v7(uuid::Timestamp::from_unix(
        &*context,
        seconds,
        at.timestamp_subsec_nanos(),
    ))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sqlite_text())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_sqlite_text())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DateTime::<Utc>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_text_is_fixed_width_and_sortable() {
        let a = Timestamp::from(
            DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let b = Timestamp::from(
            DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        assert_eq!(a.to_sqlite_text(), "2026-01-02T03:04:05.000000Z");
        assert_eq!(b.to_sqlite_text(), "2026-01-02T03:04:05.500000Z");
        assert!(a.to_sqlite_text() < b.to_sqlite_text());
    }

    #[test]
    fn v7_ids_follow_the_given_time() {
        let early = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let late = early + chrono::TimeDelta::milliseconds(1);
        assert!(uuid_v7_at(early) < uuid_v7_at(late));
        assert_eq!(uuid_v7_at(early).get_version_num(), 7);
        // Strictly increasing within one instant, too.
        let ids: Vec<Uuid> = (0..100).map(|_| uuid_v7_at(late)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
