//! The planner Lambda's entry point: configuration, clients, runtime.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = recovery::Config::from_env().map_err(|e| format!("configuration: {e}"))?;
    let app = planner::App::load(config, |name| std::env::var(name).ok()).await?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        planner::handle(app, event).await
    }))
    .await
}
