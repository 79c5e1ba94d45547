//! The dashboards against the real binaries, so a renamed metric cannot leave a panel empty:
//!
//! - every metric the Grafana dashboard (`manifests/dashboards/grafana-firetail-sidecar.json`)
//!   queries, in a panel or a template variable, is in the real `firetail` binary's `/metrics`
//!   while it ships (through the fault-injecting endpoint, so the per-code retry and failure
//!   series exist too);
//! - every `Firetail/...` metric the CloudWatch dashboard and the alarms in `template.yaml` read
//!   is declared, with a value and the same dimensions, in the EMF line the real
//!   `firetail-transform` binary prints for an invocation through the Lambda Runtime API.
//!
//! Both sides are read from the files and the processes, never from a list kept here.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use firetail_testkit::route::{
    Destination, FakePod, PodDirs, Processor, RecordResult, sidecar_command,
};
use firetail_testkit::{ChildGuard, FaultPlan, FirehoseEndpoint, free_port, workspace_bin};
use serde_json::Value;

use crate::common::{PATIENCE, transform};

const GRAFANA_DASHBOARD: &str = "manifests/dashboards/grafana-firetail-sidecar.json";
const TEMPLATE: &str = "template.yaml";
/// Every sidecar metric name starts with this (`sidecar/src/metrics/defs.rs`, `PREFIX`).
const PROMETHEUS_PREFIX: &str = "firetail_";

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn read_repo_file(path: &str) -> String {
    let file = repo_file(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The body of `GET /metrics` on 127.0.0.1:`port`, or `None` while nothing listens.
fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The value of the unlabelled sample `name` in an exposition.
fn sample(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

/// Every series name a query can select in an OpenMetrics exposition: the samples' names, and
/// for each `# TYPE` the names its samples carry (a counter `x` is queried as `x_total`, a
/// histogram as `x_bucket`, `x_sum`, `x_count`), so a labelled family that has no child yet
/// still counts as exported.
fn exposed_series(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{name}{suffix}"));
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// The metric names in a PromQL expression: identifiers with the sidecar's prefix outside
/// string literals (label values, regexes).
fn promql_metrics(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = expr.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            quote = Some(c);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &expr[i..end];
            if word.starts_with(PROMETHEUS_PREFIX) {
                names.push(word.to_owned());
            }
        } else if c.is_ascii_digit() {
            // A number (1e9, 0.5): its letters are not a name.
            while chars
                .peek()
                .is_some_and(|(_, d)| d.is_ascii_alphanumeric() || *d == '.')
            {
                chars.next();
            }
        }
    }
    names
}

/// `(where, PromQL)` for every panel target and every query variable of a Grafana dashboard.
fn grafana_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, title: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
                if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                    out.push((format!("panel \"{title}\""), expr.to_owned()));
                }
                for child in map.values() {
                    walk(child, title, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, title, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], "", &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let query = var["query"]
                .get("query")
                .unwrap_or(&var["query"])
                .as_str()
                .unwrap_or_default();
            out.push((format!("variable ${}", var["name"]), query.to_owned()));
        }
    }
    out
}

/// Every `datasource` object under `v`.
fn datasources(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            if let Some(ds) = map.get("datasource").filter(|d| d.is_object()) {
                out.push(ds.clone());
            }
            map.values().for_each(|child| datasources(child, out));
        }
        Value::Array(items) => items.iter().for_each(|item| datasources(item, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_queries_only_metrics_the_firetail_binary_exports() {
    let dashboard: Value = serde_json::from_str(&read_repo_file(GRAFANA_DASHBOARD)).unwrap();

    // Importable anywhere: the Prometheus data source is a template variable that every panel
    // and target uses, not a uid of the machine it was made on.
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let ds_var = vars
        .iter()
        .find(|v| v["type"] == "datasource" && v["query"] == "prometheus")
        .expect("a datasource variable of type prometheus");
    let ds_uid = format!("${{{}}}", ds_var["name"].as_str().unwrap());
    let mut used = Vec::new();
    datasources(&dashboard["panels"], &mut used);
    assert!(!used.is_empty(), "no panel names a data source");
    for ds in &used {
        assert_eq!(
            ds["uid"],
            ds_uid.as_str(),
            "a data source not through the variable: {ds}"
        );
    }

    // The real binary, shipping through an endpoint that refuses a fifth of the records, so
    // the retry and failure families have children; one event per record, many calls.
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        seed: 17,
        record_failure_ratio: 0.2,
        ..FaultPlan::default()
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dirs = PodDirs::new(tmp.path());
    let lines = 400;
    let text: String = (0..lines)
        .map(|n| format!("GET /dash seq={n} 200\n"))
        .collect();
    std::fs::write(dirs.container("app").join("app.log"), text).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cmd = sidecar_command(
        &workspace_bin("firetail"),
        &endpoint.url(),
        "logs",
        &FakePod::default(),
        &dirs,
        "json",
        &[("FIRETAIL_METRICS_ADDR", addr.as_str())],
    )
    .unwrap();
    let mut sidecar = ChildGuard::spawn("firetail", cmd).unwrap();

    // Scraped while it runs (the gauges are read at scrape time), once every event is sent.
    let start = Instant::now();
    let exposition = loop {
        if let Some(text) = scrape(port)
            && sample(&text, "firetail_events_sent_total").is_some_and(|n| n >= f64::from(lines))
        {
            break text;
        }
        if let Some(status) = sidecar.try_wait().unwrap() {
            panic!("firetail exited early ({status}):\n{}", sidecar.stderr());
        }
        assert!(
            start.elapsed() < PATIENCE,
            "not every event sent in time; firetail's log:\n{}",
            sidecar.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    sidecar.terminate().unwrap();
    sidecar.wait_timeout(PATIENCE).unwrap();
    assert!(
        exposition.contains("firetail_retries_total{code="),
        "the faults left no retry series:\n{exposition}"
    );

    let exposed = exposed_series(&exposition);
    let queries = grafana_queries(&dashboard);
    assert!(queries.len() >= 10, "too few queries found: {queries:?}");
    let mut missing = Vec::new();
    for (place, expr) in &queries {
        let names = promql_metrics(expr);
        assert!(
            !names.is_empty(),
            "{place} queries no firetail metric: {expr}"
        );
        for name in names {
            if !exposed.contains(&name) {
                missing.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the firetail binary does not export:\n  {}\nexported: {exposed:?}",
        missing.join("\n  ")
    );
}

/// The `DashboardBody` JSON of `template.yaml`'s `AWS::CloudWatch::Dashboard`, with every
/// `${...}` of its `Fn::Sub` replaced: inside a string by a placeholder, in a value position
/// (after `:`) by a number, elsewhere (an optional list item) by nothing.
fn cloudwatch_dashboard_body(template: &str) -> Value {
    let lines: Vec<&str> = template.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "DashboardBody: !Sub")
        .expect("template.yaml: DashboardBody: !Sub");
    assert_eq!(
        lines[at + 1].trim(),
        "- |",
        "DashboardBody: a `- |` block follows"
    );
    let indent = |l: &str| l.len() - l.trim_start().len();
    let block_indent = indent(lines[at + 1]);
    let body: Vec<&str> = lines[at + 2..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > block_indent)
        .copied()
        .collect();
    let text = body.join("\n");

    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("${") {
            let end = after.find('}').expect("unterminated ${ in DashboardBody");
            if in_string {
                out.push_str("SUB");
            } else if out.trim_end().ends_with(':') {
                out.push('0');
            }
            rest = &after[end + 1..];
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}\n{out}"))
}

/// One CloudWatch metric a dashboard or alarm reads.
#[derive(Debug)]
struct CloudWatchMetric {
    place: String,
    namespace: String,
    name: String,
    dimensions: BTreeSet<String>,
}

/// Every metric row of every widget, with CloudWatch's "." (same as the row above) resolved.
fn dashboard_metrics(body: &Value) -> Vec<CloudWatchMetric> {
    let mut out = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        let title = widget["properties"]["title"].as_str().unwrap_or("?");
        let mut previous: Vec<String> = Vec::new();
        for row in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let items: Vec<String> = row
                .as_array()
                .unwrap()
                .iter()
                .map_while(|v| v.as_str().map(str::to_owned))
                .collect();
            if items.len() < 2 {
                continue; // a metric math expression
            }
            let items: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if v == "." {
                        previous.get(i).cloned().unwrap_or_default()
                    } else {
                        v.clone()
                    }
                })
                .collect();
            out.push(CloudWatchMetric {
                place: format!("widget \"{title}\""),
                namespace: items[0].clone(),
                name: items[1].clone(),
                dimensions: items[2..].iter().step_by(2).cloned().collect(),
            });
            previous = items;
        }
    }
    out
}

/// The `Firetail/...` metrics of the template's alarms (`Namespace:`, `MetricName:` and the
/// `{Name: ...}` dimensions of one resource).
fn alarm_metrics(template: &str) -> Vec<CloudWatchMetric> {
    let mut out = Vec::new();
    let lines: Vec<&str> = template.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(namespace) = line.trim().strip_prefix("Namespace: Firetail/") else {
            continue;
        };
        let mut name = String::new();
        let mut dimensions = BTreeSet::new();
        for next in &lines[i + 1..] {
            let t = next.trim();
            if t.ends_with(':') && !t.starts_with('-') && t != "Dimensions:" {
                break; // the next property with a block of its own
            }
            if let Some(n) = t.strip_prefix("MetricName: ") {
                name = n.to_owned();
            }
            if let Some(d) = t.strip_prefix("- {Name: ") {
                dimensions.insert(d.split(',').next().unwrap_or_default().to_owned());
            }
        }
        out.push(CloudWatchMetric {
            place: format!("template.yaml line {}", i + 1),
            namespace: format!("Firetail/{namespace}"),
            name,
            dimensions,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_dashboard_reads_only_metrics_the_transform_binary_emits() {
    let template = read_repo_file(TEMPLATE);
    let body = cloudwatch_dashboard_body(&template);
    let mut read: Vec<CloudWatchMetric> = dashboard_metrics(&body)
        .into_iter()
        .filter(|m| m.namespace.starts_with("Firetail/"))
        .collect();
    let from_dashboard = read.len();
    assert!(
        from_dashboard >= 5,
        "the dashboard reads no transform metrics: {read:?}"
    );
    read.extend(alarm_metrics(&template));
    assert!(
        read.len() > from_dashboard,
        "no alarm on a transform metric found"
    );

    // The real binary through the Lambda Runtime API: one invocation, its EMF line on stdout.
    let (api, function) = transform(Destination::Datadog, "http://127.0.0.1:9", &[]).await;
    let record = br#"{"log":"GET /dash 200","stream":"stdout","kubernetes":{"namespace_name":"shop","pod_name":"web-1","container_name":"web"}}"#;
    let processed = Processor::new("arn:aws:firehose:us-east-1:123456789012:deliverystream/logs")
        .process(&api, &[record.to_vec()])
        .await
        .unwrap();
    assert_eq!(
        processed.count(RecordResult::Ok),
        1,
        "{}",
        function.stderr()
    );
    let stdout = function.stdout();
    let emf: Value = stdout
        .lines()
        .find(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no EMF line on the transform's stdout:\n{stdout}"));
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    let namespace = directive["Namespace"].as_str().unwrap();
    let dimensions: BTreeSet<String> = directive["Dimensions"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    let declared: BTreeSet<String> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect();

    let mut wrong = Vec::new();
    for m in &read {
        if m.namespace != namespace {
            wrong.push(format!(
                "{}: namespace {} (the transform's is {namespace})",
                m.place, m.namespace
            ));
        }
        if !declared.contains(&m.name) || !emf[&m.name].is_number() {
            wrong.push(format!("{}: {} is not in the EMF line", m.place, m.name));
        }
        if m.dimensions != dimensions {
            wrong.push(format!(
                "{}: {} with dimensions {:?}, the EMF line has {dimensions:?}",
                m.place, m.name, m.dimensions
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the CloudWatch dashboard or an alarm reads what the transform does not emit:\n  {}\nEMF line: {emf}",
        wrong.join("\n  ")
    );
}

#[test]
fn promql_names_skip_label_values_and_numbers() {
    assert_eq!(
        promql_metrics(
            r#"sum(rate(firetail_a_total{pod=~"firetail_x"}[5m])) / 1e9 + firetail_b_bucket"#
        ),
        ["firetail_a_total", "firetail_b_bucket"]
    );
    let names =
        exposed_series("# TYPE firetail_c counter\n# TYPE firetail_h histogram\nfiretail_g 1\n");
    for n in [
        "firetail_c_total",
        "firetail_h_bucket",
        "firetail_h_sum",
        "firetail_h_count",
        "firetail_g",
    ] {
        assert!(names.contains(n), "{n}: {names:?}");
    }
}
