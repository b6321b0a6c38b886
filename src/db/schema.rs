//! The tables, written by hand for both backends (see diesel.toml for why not generated).
//! Column types from `crate::db::types` map to native PostgreSQL types and to TEXT on SQLite.

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbTimestamp;

    platform_settings (key) {
        key -> Text,
        value -> Text,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    operators (id) {
        id -> DbUuid,
        username -> Text,
        password_hash -> Text,
        display_name -> Text,
        active -> Bool,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}
