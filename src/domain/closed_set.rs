//! Closed sets of values (history kinds, actor kinds, link kinds, version statuses, …): one
//! macro gives each its wire and storage spelling, so the enum, the JSON, the OpenAPI `enum`
//! list and the TEXT column all use the same strings.

use std::fmt;

/// A stored value outside its closed set: the database holds something this binary does not
/// know, which is an internal error, never a client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub set: &'static str,
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} value {:?}", self.set, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// Declares a closed set: `Variant = "spelling"` pairs. The enum serialises to and
/// deserialises from exactly those spellings (unknown values are serde errors), appears as an
/// `enum` in the OpenAPI document, and has `as_str`, `parse` (`None` when unknown) and
/// `from_storage` (an [`UnknownValue`] error when unknown) for rows.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }

            pub fn from_storage(
                raw: &str,
            ) -> Result<Self, $crate::domain::closed_set::UnknownValue> {
                Self::parse(raw).ok_or_else(|| $crate::domain::closed_set::UnknownValue {
                    set: stringify!($name),
                    value: raw.to_owned(),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use closed_set;

#[cfg(test)]
mod tests {
    closed_set! {
        /// A test set.
        pub enum Sample {
            One = "one",
            TwoWords = "two_words",
            Descending = "-one",
        }
    }

    #[test]
    fn spellings_round_trip_through_text_and_json() {
        for s in Sample::ALL {
            assert_eq!(Sample::parse(s.as_str()), Some(*s));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::json!(s.as_str()));
            assert_eq!(serde_json::from_value::<Sample>(json).unwrap(), *s);
        }
        assert_eq!(Sample::TwoWords.to_string(), "two_words");
    }

    #[test]
    fn unknown_values_are_refused() {
        assert_eq!(Sample::parse("three"), None);
        let err = Sample::from_storage("three").unwrap_err();
        assert_eq!(err.to_string(), "unknown Sample value \"three\"");
        assert!(serde_json::from_value::<Sample>(serde_json::json!("ONE")).is_err());
    }
}
