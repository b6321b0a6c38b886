//! The OpenAPI schema of the typed ids of [`crate::domain::ids`]: a string with format `uuid`,
//! described by the id's doc line, referenced by name from every DTO that carries one.

use std::borrow::Cow;

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::ids::*;

fn uuid_schema(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some(description.trim()))
        .into()
}

macro_rules! id_schema {
    ($($name:ident),* $(,)?) => {$(
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                uuid_schema($name::DOC)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )*};
}

crate::domain::ids::for_each_typed_id!(id_schema);
