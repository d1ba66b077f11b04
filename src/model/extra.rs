//! What a newer umm wrote that this one does not know, kept: a package
//! downgrade must not drop a maintenance in force, nor the fields the newer
//! umm will want back after the next upgrade.

/// Fields written by a newer umm, kept as they were and written back.
pub type Extra = serde_json::Map<String, serde_json::Value>;
