//! JSON for tools: every view is rendered through `serde_json::Value`,
//! whose objects keep their keys sorted, so the output has the same key
//! order as umm has always printed, whatever the order of a view's fields.

use anyhow::Result;
use serde::Serialize;

/// `view` as indented JSON, keys sorted.
pub fn pretty(view: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string_pretty(&serde_json::to_value(view)?)?)
}
