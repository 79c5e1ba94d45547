//! The Runtime API server driven by the real `lambda_runtime` client (the `echo-lambda` binary),
//! plus the protocol corners a client library does not reach (init errors, unknown ids).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use firetail_testkit::{InvokeError, RuntimeApi, spawn_function};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ECHO: &str = env!("CARGO_BIN_EXE_echo-lambda");

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

async fn invoke_json(api: &RuntimeApi, payload: Value) -> Result<Value, InvokeError> {
    let body = api
        .invoke_timeout(payload.to_string().into_bytes(), Duration::from_secs(20))
        .await?;
    Ok(serde_json::from_slice(&body).unwrap())
}

/// One HTTP/1.1 request on a fresh connection; returns the status code.
async fn raw_post(api: &RuntimeApi, path: &str, headers: &str, body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(api.addr()).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
        api.addr(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn real_client_serves_many_invocations_on_one_connection() {
    let api = RuntimeApi::start().await.unwrap();
    let started = Instant::now();
    let function = spawn_function(Path::new(ECHO), &api, no_env()).unwrap();
    let first_poll = api.wait_first_poll(Duration::from_secs(20)).await.unwrap();
    assert!(first_poll > started);

    let mut ids = std::collections::BTreeSet::new();
    for n in 0..100 {
        let answer = invoke_json(&api, json!({ "n": n })).await.unwrap();
        assert_eq!(answer["echo"], json!({ "n": n }), "{}", function.stderr());
        assert_eq!(answer["function_name"], "echo-lambda");
        assert_eq!(
            answer["function_arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:echo-lambda"
        );
        let deadline_ms = answer["deadline_ms"].as_u64().unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(
            deadline_ms > now_ms,
            "deadline {deadline_ms} not after {now_ms}"
        );
        ids.insert(answer["request_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 100, "request ids must be unique");
    // 200 requests. The client pools its connections; it opens a new one only now and then
    // (when it drops an answer unread), never one per request.
    assert!(api.connections() < 50, "{} connections", api.connections());
    assert!(api.polls() >= 25);
    assert_eq!(
        api.first_poll_at(),
        Some(first_poll),
        "the first poll stays the first"
    );
}

#[tokio::test]
async fn handler_errors_and_panics_are_invocation_errors_and_the_function_goes_on() {
    let api = RuntimeApi::start().await.unwrap();
    let _function = spawn_function(Path::new(ECHO), &api, no_env()).unwrap();

    match invoke_json(&api, json!({ "fail": "bad record" })).await {
        Err(InvokeError::Function { error_type, body }) => {
            assert!(error_type.is_some());
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["errorMessage"], "bad record");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    match invoke_json(&api, json!({ "panic": "boom" })).await {
        Err(InvokeError::Function { body, .. }) => {
            assert!(String::from_utf8_lossy(&body).contains("boom"));
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    let answer = invoke_json(&api, json!({ "after": "errors" }))
        .await
        .unwrap();
    assert_eq!(answer["echo"]["after"], "errors");
}

#[tokio::test]
async fn a_timed_out_invocation_is_withdrawn_and_never_delivered() {
    let api = RuntimeApi::start().await.unwrap();
    // No function yet: nobody polls.
    let err = api
        .invoke_timeout(b"{\"stale\":true}".to_vec(), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err, InvokeError::Timeout(Duration::from_millis(50)));
    assert!(api.first_poll_at().is_none());

    let _function = spawn_function(Path::new(ECHO), &api, no_env()).unwrap();
    let answer = invoke_json(&api, json!({ "fresh": true })).await.unwrap();
    assert_eq!(answer["echo"], json!({ "fresh": true }));
}

#[tokio::test]
async fn init_error_fails_pending_and_later_invocations() {
    let api = RuntimeApi::start().await.unwrap();
    let pending = api.invoke_timeout(b"{}".to_vec(), Duration::from_secs(20));
    let report = async {
        // Let the invocation get queued first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        raw_post(
            &api,
            "/2018-06-01/runtime/init/error",
            "lambda-runtime-function-error-type: Runtime.InitError\r\n",
            r#"{"errorType":"Config","errorMessage":"FIRETAIL_TAG_MAP is invalid"}"#,
        )
        .await
    };
    let (outcome, status) = tokio::join!(pending, report);
    assert_eq!(status, 202);
    let expected = InvokeError::Init {
        error_type: Some("Runtime.InitError".to_owned()),
        body: br#"{"errorType":"Config","errorMessage":"FIRETAIL_TAG_MAP is invalid"}"#.to_vec(),
    };
    assert_eq!(outcome.unwrap_err(), expected);
    assert_eq!(api.invoke(b"{}".to_vec()).await.unwrap_err(), expected);
}

#[tokio::test]
async fn unknown_request_ids_and_paths_are_rejected() {
    let api = RuntimeApi::start().await.unwrap();
    let status = raw_post(
        &api,
        "/2018-06-01/runtime/invocation/nope/response",
        "",
        "{}",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(raw_post(&api, "/2018-06-01/other", "", "").await, 404);
}

#[tokio::test]
async fn shutdown_ends_pending_invocations_and_the_function_exits() {
    let mut api = RuntimeApi::start().await.unwrap();
    let mut function = spawn_function(Path::new(ECHO), &api, no_env()).unwrap();
    invoke_json(&api, json!({ "warm": true })).await.unwrap();
    api.shutdown().await;
    assert_eq!(
        api.invoke(b"{}".to_vec()).await.unwrap_err(),
        InvokeError::Shutdown
    );
    // Its long poll was cut: the runtime client gives up and the process ends on its own.
    let status = function.wait_timeout(Duration::from_secs(20)).unwrap();
    assert!(status.is_some(), "function still running after shutdown");
}

#[test]
fn workspace_bin_finds_binaries_next_to_the_tests() {
    let found = firetail_testkit::workspace_bin("echo-lambda");
    assert_eq!(
        found.canonicalize().unwrap(),
        Path::new(ECHO).canonicalize().unwrap()
    );
}

#[test]
#[should_panic(expected = "cargo build --workspace --all-targets")]
fn workspace_bin_says_how_to_build_a_missing_binary() {
    firetail_testkit::workspace_bin("no-such-binary");
}
