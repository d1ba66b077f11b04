//! Rolling maintenance's conditions for entering ([rolling] in umm.toml):
//! a maintenance window open in the node's local time zone, and the health
//! gate (Prometheus' firing alerts matching `gate_alerts`, `gate_expr`
//! returning nothing), fail-closed. A plain `umm on` is refused outside a
//! window or with the gate closed, unless `--force`. The check.d hooks are
//! `umm on`'s own check (enter.rs), before this.

use super::{refused, Context};
use crate::fleet::gate::query;
use crate::model::rolling::RollingSettings;
use crate::model::settings::Settings;
use crate::model::timefmt::rfc3339;
use crate::output::message::{say, Message, Overridden};
use crate::rules::gate::{alerts_query, read_answer, verdict, Check, Finding, Gate};
use crate::rules::window;
use crate::sys::localtime;

/// Whether `umm on` may go on: true, or false once the refusal is said.
/// With `force`, what is overridden is said and it goes on.
pub(super) fn on_allowed(ctx: &Context, settings: &Settings, force: bool) -> bool {
    let rolling = &settings.rolling;
    let mut closed = Vec::new();
    if let Some(why) = window_closed(ctx, rolling) {
        closed.push((Overridden::Window, why));
    }
    if let Gate::Red(reasons) = gate(settings) {
        closed.push((Overridden::Gate, reasons.join("; ")));
    }
    if closed.is_empty() {
        return true;
    }
    if force {
        for (what, why) in &closed {
            say(&Message::Overriding {
                what: *what,
                failed: why,
            });
        }
        return true;
    }
    let why: Vec<String> = closed.into_iter().map(|(_, why)| why).collect();
    refused("on", format!("{} (--force overrides)", why.join("; ")));
    false
}

/// Why no window is open now (with the next one's start), or None when one
/// is (or none is configured). A zone that cannot be read keeps it closed.
pub(super) fn window_closed(ctx: &Context, rolling: &RollingSettings) -> Option<String> {
    if rolling.windows.is_empty() {
        return None;
    }
    let tz = match localtime::zone(&ctx.root) {
        Ok(tz) => tz,
        Err(e) => return Some(format!("no maintenance window can be placed: {e}")),
    };
    let now = ctx.clock.now();
    if window::open(&rolling.windows, now, &tz) {
        return None;
    }
    Some(match window::next_open(&rolling.windows, now, &tz) {
        Some(at) => format!(
            "outside the maintenance windows; the next opens at {} ({})",
            tz.to_datetime(jiff::Timestamp::from_second(at).unwrap_or_default()),
            rfc3339(at)
        ),
        None => "outside the maintenance windows; none opens within a week".into(),
    })
}

/// The health gate's verdict: Prometheus asked for each query configured.
pub(super) fn gate(settings: &Settings) -> Gate {
    let rolling = &settings.rolling;
    let Some(url) = rolling.gate_url.as_deref() else {
        return Gate::Green;
    };
    let mut checks = Vec::new();
    let queries = [
        (
            "gate_alerts",
            rolling.gate_alerts.as_deref().map(alerts_query),
        ),
        ("gate_expr", rolling.gate_expr.clone()),
    ];
    for (name, promql) in queries {
        let Some(promql) = promql else { continue };
        let finding = match query(&settings.fleet, url, &promql, rolling.gate_timeout) {
            Ok(body) => read_answer(&body),
            Err(e) => Finding::Failed(e),
        };
        checks.push(Check {
            name: name.into(),
            finding,
        });
    }
    verdict(&checks)
}
