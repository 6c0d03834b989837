//! The worker Lambda's entry point: configuration, clients, runtime.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = recovery::Config::from_env().map_err(|e| format!("configuration: {e}"))?;
    let app = worker::App::load(config, |name| std::env::var(name).ok()).await?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        worker::handle(app, event).await
    }))
    .await
}
