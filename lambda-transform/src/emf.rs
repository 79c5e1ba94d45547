//! One CloudWatch Embedded Metric Format line per invocation.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde_json::{Map, Value, json};

use crate::config::Destination;
use crate::plan::Stats;

/// CloudWatch namespace of every firetail-transform metric.
pub const NAMESPACE: &str = "Firetail/Transform";

/// Renders `stats` as an EMF log line (no trailing newline), with the function and the
/// destination as dimensions.
pub fn emf_line(
    stats: &Stats,
    function_name: &str,
    destination: Destination,
    timestamp_ms: i64,
) -> String {
    let values = serde_json::to_value(stats).unwrap_or(Value::Null);
    let Value::Object(values) = values else {
        return String::new();
    };
    let metrics: Vec<Value> = values
        .keys()
        .map(|name| {
            let unit = if name.starts_with("Bytes") {
                "Bytes"
            } else {
                "Count"
            };
            json!({ "Name": name, "Unit": unit })
        })
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName", "Destination"]],
                "Metrics": metrics,
            }]
        }),
    );
    root.insert("FunctionName".into(), Value::from(function_name));
    root.insert("Destination".into(), Value::from(destination.as_str()));
    root.extend(values);
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_counter_is_a_declared_metric() {
        let stats = Stats {
            records_in: 3,
            records_ok: 2,
            bytes_in: 10,
            ..Stats::default()
        };
        let line = emf_line(&stats, "fn", Destination::S3, 1_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["RecordsIn"], 3);
        assert_eq!(v["Destination"], "s3");
        let declared = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        assert_eq!(declared.len(), 14);
        for m in declared {
            let name = m["Name"].as_str().unwrap();
            assert!(v.get(name).is_some(), "{name} declared but has no value");
        }
        assert!(
            declared
                .iter()
                .any(|m| m["Name"] == "BytesIn" && m["Unit"] == "Bytes")
        );
    }
}
