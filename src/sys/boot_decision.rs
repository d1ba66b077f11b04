//! This boot's decision in /run (`model::boot_decision`): read and written
//! here; anything unreadable there counts as no decision.

use std::fs;

use anyhow::{Context, Result};

use super::atomic::atomic_write;
use super::fsread;
use super::paths::{self, Root};
use crate::model::boot_decision::BootDecision;

/// This boot's decision, if one was recorded; anything unreadable there is
/// logged and counts as no decision (it is rewritten by the next decision).
pub fn read(root: &Root, boot_id: &str) -> Option<BootDecision> {
    let path = root.path(paths::BOOT_DECISION);
    let bytes = match fsread::read(&path, fsread::SMALL_MAX) {
        Ok(bytes) => bytes,
        Err(e) if e.is_absent() => return None,
        Err(e) => {
            log::error!("{e}; this boot's decision is taken again");
            return None;
        }
    };
    serde_json::from_slice::<BootDecision>(&bytes)
        .ok()
        .filter(|d| d.boot_id == boot_id)
}

pub fn write(root: &Root, decision: &BootDecision) -> Result<()> {
    let path = root.path(paths::BOOT_DECISION);
    fs::create_dir_all(root.path(paths::RUN_DIR))?;
    atomic_write(&path, &serde_json::to_vec_pretty(decision)?, 0o644)
        .with_context(|| format!("cannot write {}", path.display()))
}
