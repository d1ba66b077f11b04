//! The health gate of rolling maintenance: a node enters only while its
//! group is healthy. Each check (Prometheus' firing alerts matching
//! `gate_alerts`, the PromQL `gate_expr` that must return nothing, the
//! check.d hooks) gives a `Finding`; the gate is green only when every
//! check ran and found nothing. It fails closed: a check that could not
//! run (unreachable, timed out, an answer it cannot read) is red too.
//! Asking Prometheus is the caller's; building the queries and reading the
//! answers is here, pure.

use serde_json::Value;

/// What one check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Ran, and found nothing wrong.
    Clear,
    /// Ran, and found these (alert names, series, failed hooks).
    Found(Vec<String>),
    /// Could not run or could not be read: the gate stays closed.
    Failed(String),
}

/// One check and what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, as the operator configured it: `gate_alerts`,
    /// `gate_expr`, `check.d`.
    pub name: String,
    pub finding: Finding,
}

/// The gate's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Green,
    /// Closed, with one line per reason (what a queued request waits for,
    /// what a refused `umm on` says).
    Red(Vec<String>),
}

/// Green only when every check ran and found nothing; no checks at all
/// (no gate configured) is green.
pub fn verdict(checks: &[Check]) -> Gate {
    let reasons: Vec<String> = checks
        .iter()
        .filter_map(|c| match &c.finding {
            Finding::Clear => None,
            Finding::Found(what) => Some(format!("{}: {}", c.name, what.join(", "))),
            Finding::Failed(why) => Some(format!(
                "{}: could not be checked ({why}); the gate stays closed",
                c.name
            )),
        })
        .collect();
    if reasons.is_empty() {
        Gate::Green
    } else {
        Gate::Red(reasons)
    }
}

/// The PromQL for "firing alerts whose name matches `regex`": Prometheus
/// matches the regex itself (RE2, anchored), so umm carries no regex engine.
pub fn alerts_query(regex: &str) -> String {
    format!(
        "ALERTS{{alertstate=\"firing\",alertname=~\"{}\"}}",
        promql_string(regex)
    )
}

/// `text` inside a double-quoted PromQL string: backslashes and quotes
/// escaped, control characters written as escapes.
fn promql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Reads an answer of Prometheus' `/api/v1/query`: the series of an
/// instant vector, each named by its `alertname` label if it has one, else
/// written as `{label="value",...}`. Sorted, without duplicates (an alert
/// firing on several instances is named once).
pub fn read_answer(body: &str) -> Finding {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Finding::Failed(format!("the answer is not JSON: {e}")),
    };
    if v.get("status").and_then(Value::as_str) != Some("success") {
        let why = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error given");
        return Finding::Failed(format!("Prometheus answered an error: {why}"));
    }
    let data = v.get("data");
    let kind = data
        .and_then(|d| d.get("resultType"))
        .and_then(Value::as_str);
    match kind {
        Some("vector") => {}
        Some(kind) => {
            return Finding::Failed(format!(
                "the query returned a {kind}, not an instant vector"
            ))
        }
        None => return Finding::Failed("the answer has no result type".into()),
    }
    let Some(series) = data.and_then(|d| d.get("result")).and_then(Value::as_array) else {
        return Finding::Failed("the answer has no result list".into());
    };
    let mut names: Vec<String> = series.iter().map(series_name).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        Finding::Clear
    } else {
        Finding::Found(names)
    }
}

fn series_name(series: &Value) -> String {
    let Some(labels) = series.get("metric").and_then(Value::as_object) else {
        return "{}".into();
    };
    if let Some(name) = labels.get("alertname").and_then(Value::as_str) {
        return name.to_string();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str()
                    .map_or_else(|| v.to_string(), |s| format!("{s:?}"))
            )
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, finding: Finding) -> Check {
        Check {
            name: name.into(),
            finding,
        }
    }

    fn found(names: &[&str]) -> Finding {
        Finding::Found(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn the_gate_is_green_only_when_every_check_ran_clean() {
        let clear = check("gate_alerts", Finding::Clear);
        let firing = check("gate_alerts", found(&["NodeDown", "CephWarn"]));
        let down = check("gate_expr", Finding::Failed("connection refused".into()));
        let hook = check("check.d", found(&["10-quorum"]));
        // (checks, reasons; empty: green)
        let cases: Vec<(Vec<Check>, Vec<&str>)> =
            vec![
            (vec![], vec![]),
            (vec![clear.clone()], vec![]),
            (vec![clear.clone(), check("check.d", Finding::Clear)], vec![]),
            (vec![firing.clone()], vec!["gate_alerts: NodeDown, CephWarn"]),
            (
                vec![clear.clone(), down.clone()],
                vec!["gate_expr: could not be checked (connection refused); the gate stays closed"],
            ),
            (
                vec![firing, clear, hook, down],
                vec![
                    "gate_alerts: NodeDown, CephWarn",
                    "check.d: 10-quorum",
                    "gate_expr: could not be checked (connection refused); the gate stays closed",
                ],
            ),
        ];
        for (checks, reasons) in cases {
            let want = if reasons.is_empty() {
                Gate::Green
            } else {
                Gate::Red(reasons.iter().map(|r| r.to_string()).collect())
            };
            assert_eq!(verdict(&checks), want, "{checks:?}");
        }
    }

    #[test]
    fn the_alert_regex_is_quoted_for_promql() {
        // (regex, query)
        let cases = [
            (".*", r#"ALERTS{alertstate="firing",alertname=~".*"}"#),
            (
                "Ceph.*|NodeDown",
                r#"ALERTS{alertstate="firing",alertname=~"Ceph.*|NodeDown"}"#,
            ),
            (r"a\d+", r#"ALERTS{alertstate="firing",alertname=~"a\\d+"}"#),
            (
                "x\"}or vector(1)",
                r#"ALERTS{alertstate="firing",alertname=~"x\"}or vector(1)"}"#,
            ),
            ("a\nb", r#"ALERTS{alertstate="firing",alertname=~"a\nb"}"#),
            (
                "a\u{7}",
                r#"ALERTS{alertstate="firing",alertname=~"a\u0007"}"#,
            ),
        ];
        for (regex, want) in cases {
            assert_eq!(alerts_query(regex), want, "{regex:?}");
        }
    }

    #[test]
    fn answers_are_read_fail_closed() {
        let vector = |result: &str| {
            format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#)
        };
        let alert = |name: &str, instance: &str| {
            format!(
                r#"{{"metric":{{"__name__":"ALERTS","alertname":"{name}","instance":"{instance}"}},"value":[1,"1"]}}"#
            )
        };
        let two = format!(
            "[{},{},{}]",
            alert("NodeDown", "a"),
            alert("CephWarn", "b"),
            alert("NodeDown", "c")
        );
        // (answer, finding)
        let cases = [
            (vector("[]"), Finding::Clear),
            (vector(&two), found(&["CephWarn", "NodeDown"])),
            (
                vector(r#"[{"metric":{"job":"node","instance":"x:9100"},"value":[1,"0"]}]"#),
                found(&[r#"{instance="x:9100",job="node"}"#]),
            ),
            (vector(r#"[{"value":[1,"0"]}]"#), found(&["{}"])),
            (
                r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#.into(),
                Finding::Failed("Prometheus answered an error: parse error".into()),
            ),
            (
                r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#.into(),
                Finding::Failed("the query returned a scalar, not an instant vector".into()),
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector"}}"#.into(),
                Finding::Failed("the answer has no result list".into()),
            ),
            (
                r#"{"status":"success"}"#.into(),
                Finding::Failed("the answer has no result type".into()),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(read_answer(&body), want, "{body}");
        }
        for junk in ["", "<html>502 Bad Gateway</html>", "[1,2"] {
            assert!(
                matches!(read_answer(junk), Finding::Failed(ref e) if e.starts_with("the answer is not JSON")),
                "{junk:?}"
            );
        }
    }
}
