use std::fmt;

use super::ObjectKind;

/// How one object of a tenant's schema differs from the reference schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SchemaDifference {
    /// The tenant has an object the reference lacks (a hotfix applied by hand).
    Added {
        /// Its kind.
        kind: ObjectKind,
        /// Its qualified name.
        name: String,
        /// Its definition.
        definition: String,
    },
    /// The tenant lacks an object of the reference (an index dropped in an incident).
    Missing {
        /// Its kind.
        kind: ObjectKind,
        /// Its qualified name.
        name: String,
        /// The reference's definition.
        definition: String,
    },
    /// The tenant defines the object otherwise (a column's type, a default).
    Changed {
        /// Its kind.
        kind: ObjectKind,
        /// Its qualified name.
        name: String,
        /// The reference's definition.
        reference: String,
        /// The tenant's definition.
        found: String,
    },
}

impl SchemaDifference {
    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::Added { kind, .. } | Self::Missing { kind, .. } | Self::Changed { kind, .. } => {
                *kind
            }
        }
    }

    /// The object's qualified name.
    pub fn name(&self) -> &str {
        match self {
            Self::Added { name, .. } | Self::Missing { name, .. } | Self::Changed { name, .. } => {
                name
            }
        }
    }

    pub(super) fn key(&self) -> (ObjectKind, &str) {
        (self.kind(), self.name())
    }
}

/// One line: `column public.items.note added: text`,
/// `index public.items_sku_idx missing`, `column public.items.qty changed: integer -> bigint`.
impl fmt::Display for SchemaDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added {
                kind,
                name,
                definition,
            } => write!(f, "{kind} {name} added: {definition}"),
            Self::Missing { kind, name, .. } => write!(f, "{kind} {name} missing"),
            Self::Changed {
                kind,
                name,
                reference,
                found,
            } => write!(f, "{kind} {name} changed: {reference} -> {found}"),
        }
    }
}
