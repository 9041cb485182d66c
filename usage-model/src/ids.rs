use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::Error;

fn validate(kind: &'static str, value: String) -> Result<String, Error> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidId {
            kind,
            value,
            reason,
        }),
        None => Ok(value),
    }
}

// The text is shared: every record of a cycle carries its zone and account,
// and a clone is a reference count, not an allocation (BENCHMARKS §3).
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        ///
        /// Cloning shares the text (a reference count), so clones are cheap.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[cfg_attr(feature = "serde", serde(try_from = "String", into = "String"))]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps `value`.
            ///
            /// # Errors
            ///
            /// Returns [`Error::InvalidId`] when `value` is empty or contains a
            /// control character.
            pub fn new(value: impl Into<String>) -> Result<Self, Error> {
                validate($kind, value.into()).map(|valid| $name(Arc::from(valid)))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(s: String) -> Result<Self, Error> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                String::from(&*id.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// An account that can hold addresses (CloudStack's account id or name).
    ///
    /// Any non-empty text without control characters.
    AccountId,
    "account"
);

string_id!(
    /// An availability zone: the unit a collection cycle and its checkpoint run over.
    ///
    /// Any non-empty text without control characters.
    ZoneId,
    "zone"
);
