//! The result lines: one NDJSON object per figure on stdout, and the arithmetic that turns
//! samples into figures (rates, percentiles, ratios to the baseline). Never measures.

use std::io::Write;

use serde_json::{json, Value};

pub(crate) fn emit(v: Value) {
    // "type" first, as in every NDJSON line of the project, then the common fields.
    const FIRST: [&str; 7] = [
        "name",
        "layout",
        "unit",
        "value",
        "baseline",
        "baseline_kind",
        "ratio",
    ];
    let obj = v.as_object().expect("object");
    let mut s = String::from("{\"type\":\"result\"");
    let rest = obj.keys().filter(|k| !FIRST.contains(&k.as_str()));
    for k in FIRST.iter().copied().chain(rest.map(String::as_str)) {
        if let Some(x) = obj.get(k) {
            s.push_str(&format!(",{}:{}", json!(k), x));
        }
    }
    s.push('}');
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
    let _ = o.flush();
}

pub(crate) fn ratio(value: f64, baseline: f64) -> Value {
    if baseline > 0.0 {
        json!((value / baseline * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

/// Delivered messages per second over all receivers: first arrival to last arrival.
pub(crate) fn rate(done: &[Value]) -> (f64, u64) {
    let got: u64 = done.iter().map(|d| d["got"].as_u64().unwrap_or(0)).sum();
    let first = done
        .iter()
        .filter_map(|d| d["first"].as_u64())
        .min()
        .unwrap_or(0);
    let last = done
        .iter()
        .filter_map(|d| d["last"].as_u64())
        .max()
        .unwrap_or(0);
    let secs = (last.saturating_sub(first)) as f64 / 1e9;
    (if secs > 0.0 { got as f64 / secs } else { 0.0 }, got)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
