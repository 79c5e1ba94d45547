//! A minimal Lambda on the real `lambda_runtime` client, so the testkit's Runtime API server is
//! proven against the same client the transform uses. It answers each event with the event
//! itself plus what the runtime told it (request id, function ARN, deadline); `{"fail": MSG}`
//! makes it return an error and `{"panic": MSG}` makes the handler panic.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.into());
    }
    if let Some(message) = payload.get("panic").and_then(Value::as_str) {
        panic!("{message}");
    }
    Ok(json!({
        "echo": payload,
        "request_id": context.request_id,
        "function_arn": context.invoked_function_arn,
        "deadline_ms": context.deadline,
        "function_name": context.env_config.function_name,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
