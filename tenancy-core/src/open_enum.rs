//! `open_enum!`: an enum mirroring a remote API's string values that keeps the
//! values it does not know.

/// Declares a `#[non_exhaustive]` enum of a remote API's string values, with a
/// catch-all variant holding any value this crate does not know, so a value the
/// server adds never fails deserialization and is kept as sent.
///
/// Generates `as_str`, `known()` (every named variant), `NAMED` (their strings),
/// `Display`, `From<&str>`, `Serialize` and `Deserialize`.
///
/// ```
/// tenancy_core::open_enum! {
///     /// A subscription's status.
///     pub enum Status {
///         /// Paid.
///         Active => "active",
///         /// Payment failed.
///         PastDue => "past_due",
///     }
///     /// A value this version does not know, kept as sent.
///     other Unknown
/// }
///
/// let status: Status = serde_json::from_str("\"paused\"").unwrap();
/// assert_eq!(status, Status::Unknown("paused".into()));
/// assert_eq!(serde_json::to_string(&status).unwrap(), "\"paused\"");
/// assert_eq!(Status::from("past_due"), Status::PastDue);
/// assert_eq!(Status::NAMED, ["active", "past_due"]);
/// ```
#[macro_export]
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $value:literal, )+
        }
        $(#[$other_meta:meta])*
        other $other:ident
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            $(#[$other_meta])*
            $other(String),
        }

        impl $name {
            /// Every value this version of the crate names, as the API spells them.
            pub const NAMED: &'static [&'static str] = &[$( $value, )+];

            /// The value as the API spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $value, )+
                    Self::$other(value) => value,
                }
            }

            /// Every variant this version of the crate names, in declaration order.
            pub fn known() -> &'static [Self] {
                &[$( Self::$variant, )+]
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $value => Self::$variant, )+
                    other => Self::$other(other.to_owned()),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error>
            where
                S: $crate::__private::serde::Serializer,
            {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> ::std::result::Result<Self, D::Error>
            where
                D: $crate::__private::serde::Deserializer<'de>,
            {
                let value = <::std::borrow::Cow<'de, str> as $crate::__private::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from(value.as_ref()))
            }
        }
    };
}
