use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::SchemaDifference;

/// What kind of object a [`SchemaObject`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ObjectKind {
    /// A table (its columns and constraints are objects of their own).
    Table,
    /// A table's column: type, nullability, default.
    Column,
    /// A primary key, unique, check, foreign key or exclusion constraint.
    Constraint,
    /// An index.
    Index,
    /// A view or materialized view.
    View,
    /// A function or procedure.
    Function,
    /// A sequence.
    Sequence,
    /// An enum type and its labels.
    Enum,
    /// A trigger.
    Trigger,
}

impl ObjectKind {
    /// The kind as a word (`column`, `index`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Column => "column",
            Self::Constraint => "constraint",
            Self::Index => "index",
            Self::View => "view",
            Self::Function => "function",
            Self::Sequence => "sequence",
            Self::Enum => "enum",
            Self::Trigger => "trigger",
        }
    }

    pub(crate) fn parse(word: &str) -> Option<Self> {
        [
            Self::Table,
            Self::Column,
            Self::Constraint,
            Self::Index,
            Self::View,
            Self::Function,
            Self::Sequence,
            Self::Enum,
            Self::Trigger,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == word)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object of a schema: its kind, qualified name and canonical definition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaObject {
    /// The kind.
    pub kind: ObjectKind,
    /// The qualified name (`public.items.note` for a column).
    pub name: String,
    /// The definition, whitespace normalised (`text not null default 'x'::text`).
    pub definition: String,
}

impl SchemaObject {
    pub(crate) fn new(kind: ObjectKind, name: String, definition: &str) -> Self {
        Self {
            kind,
            name,
            definition: normalise(definition),
        }
    }
}

/// Whitespace runs become one space; the ends are trimmed.
fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The objects of a tenant's migrated schemas, keyed by kind and name: the order
/// the catalog lists them in does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaSnapshot {
    objects: BTreeMap<(ObjectKind, String), String>,
}

impl SchemaSnapshot {
    /// A snapshot of these objects.
    pub fn new(objects: impl IntoIterator<Item = SchemaObject>) -> Self {
        Self {
            objects: objects
                .into_iter()
                .map(|o| ((o.kind, o.name), o.definition))
                .collect(),
        }
    }

    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Each object's kind, name and definition, in order.
    pub fn objects(&self) -> impl Iterator<Item = (ObjectKind, &str, &str)> {
        self.objects
            .iter()
            .map(|((kind, name), definition)| (*kind, name.as_str(), definition.as_str()))
    }

    /// The SHA-256 of the canonical listing: equal schemas, equal fingerprints.
    pub fn fingerprint(&self) -> SchemaFingerprint {
        let mut hash = Sha256::new();
        for (kind, name, definition) in self.objects() {
            for part in [kind.as_str(), name, definition] {
                hash.update(part.len().to_le_bytes());
                hash.update(part.as_bytes());
            }
        }
        SchemaFingerprint(hash.finalize().into())
    }

    /// What `self` has that `reference` lacks (added), lacks that it has
    /// (missing), and defines otherwise (changed), in kind and name order.
    pub fn diff(&self, reference: &SchemaSnapshot) -> Vec<SchemaDifference> {
        let mut differences = Vec::new();
        for ((kind, name), found) in &self.objects {
            match reference.objects.get(&(*kind, name.clone())) {
                None => differences.push(SchemaDifference::Added {
                    kind: *kind,
                    name: name.clone(),
                    definition: found.clone(),
                }),
                Some(expected) if expected != found => {
                    differences.push(SchemaDifference::Changed {
                        kind: *kind,
                        name: name.clone(),
                        reference: expected.clone(),
                        found: found.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        for ((kind, name), expected) in &reference.objects {
            if !self.objects.contains_key(&(*kind, name.clone())) {
                differences.push(SchemaDifference::Missing {
                    kind: *kind,
                    name: name.clone(),
                    definition: expected.clone(),
                });
            }
        }
        differences.sort_by(|a, b| a.key().cmp(&b.key()));
        differences
    }
}

/// The SHA-256 of a [`SchemaSnapshot`]: 32 bytes to keep per tenant instead of
/// its schema. Displays as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaFingerprint([u8; 32]);

impl SchemaFingerprint {
    pub(crate) fn into_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The first 12 hex digits, enough to tell groups apart in a report.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for SchemaFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl serde::Serialize for SchemaFingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
