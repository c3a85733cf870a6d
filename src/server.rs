//! Wiring: opens the store, resolves the admin keys, starts the dispatcher and the HTTP
//! listener, and shuts down in order on SIGTERM/SIGINT (stop accepting, let in-flight calls
//! finish within the grace period, commit, close).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState, Services};
use crate::auth::{self, Keys, Role};
use crate::config::{Config, Database};
use crate::delivery::{recover, Dispatcher};
use crate::metrics::Metrics;
use crate::outbound::{OneCalls, Sender};
use crate::relay::Relay;
use crate::store::{Store, StoreError, StoreResult};
use crate::workflow::app::AppDefinition;
use crate::workflow::service::Workflows;

/// How often expired idempotency keys are purged.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the relay until a shutdown signal.
pub async fn run(config: Config, apps: Vec<AppDefinition>) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let keys = api_keys(&config, &store).await?;
    operations(&config, &store).await?;
    let metrics = Arc::new(Metrics::new(&config.metrics).with_store(&store));
    let sender = Arc::new(
        Sender::new(&config.delivery, &config.security).context("cannot build the HTTP client")?,
    );
    let dispatcher =
        Dispatcher::new(store.clone(), sender.clone(), config.delivery.clone(), metrics.clone());
    let woken = Arc::downgrade(&dispatcher);
    store.on_due_elsewhere(move || {
        if let Some(dispatcher) = woken.upgrade() {
            dispatcher.wake();
        }
    });
    let dispatch_loop = tokio::spawn(dispatcher.clone().run());
    for job in not_yet(store.unfinished_recover_jobs().await)? {
        recover::spawn(store.clone(), dispatcher.clone(), job);
    }
    let background = vec![
        tokio::spawn(recover::adopt_lost(store.clone(), dispatcher.clone())),
        tokio::spawn(maintain(store.clone())),
        tokio::spawn(crate::retention::run(
            store.clone(),
            config.retention.clone(),
            metrics.clone(),
        )),
        tokio::spawn(crate::rollup::run(store.clone())),
    ];
    let relay = Relay::new(store.clone(), dispatcher.clone());
    let workflows = Workflows::new(
        &apps,
        store.clone(),
        sender.clone(),
        relay.clone(),
        config.limits.max_body_bytes,
    );
    let interrupted = not_yet(workflows.fail_interrupted_runs().await)?;
    if interrupted > 0 {
        tracing::warn!(
            runs = interrupted,
            "workflow runs interrupted by the last stop were marked failed"
        );
    }
    // Runs of another instance that died (PostgreSQL): failed, with their webhook, by the
    // survivor that adopts them (`Store::lost_runs`; never on SQLite).
    tokio::spawn({
        let (store, workflows) = (store.clone(), workflows.clone());
        async move {
            loop {
                store.lost_runs().await;
                if let Err(e) = workflows.fail_interrupted_runs().await {
                    tracing::warn!(error = %e, "the runs of a lost instance could not be failed");
                }
            }
        }
    });

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    sender.allow_own_sink(addr);
    let grace = Duration::from_secs(config.delivery.shutdown_grace_secs);
    let state = AppState::new(Services {
        store: store.clone(),
        relay,
        one_calls: OneCalls::new(
            store.clone(),
            dispatcher.clone(),
            sender.clone(),
            metrics.clone(),
            &config,
        ),
        dispatcher: dispatcher.clone(),
        sender,
        config: Arc::new(config),
        metrics,
        keys: Arc::new(keys),
        workflows,
    });
    // The one line saying where it listens (not logged as well, which printed it twice on a
    // terminal): on stdout, so scripts and tests can find the port when listening on :0.
    println!("hookrelay listening on http://{addr}");
    let limits = state.config.limits.clone();
    // The console's routes are all under /console, beside the API's (which keeps its
    // fallback: every other path is the API's 404).
    let app = api::router(state.clone()).merge(crate::console::router(state)?);
    crate::listener::serve(listener, app, &limits, shutdown_signal(), grace).await;

    tracing::info!("shutting down: waiting for calls in flight");
    dispatcher.shutdown(grace).await;
    for task in background {
        task.abort();
    }
    let _ = dispatch_loop.await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the store `database` names: an SQLite file, or a PostgreSQL database (whose errors
/// name it without the password).
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let rule = &config.security.redact_headers;
    match &config.database {
        Database::Sqlite(path) => Store::open(path, &config.store, rule)
            .with_context(|| format!("cannot open database {}", path.display())),
        Database::Postgres(url) => {
            Store::open_postgres(url.secret(), config.store.postgres_pool_size, rule)
                .await
                .context("cannot open the PostgreSQL database")
        }
    }
}

/// A start-up step's result, where a step the PostgreSQL store cannot take yet (issue 15 adds
/// the table families one by one) has nothing to do: it is skipped, saying so.
fn not_yet<T: Default>(result: StoreResult<T>) -> StoreResult<T> {
    match result {
        Err(StoreError::NotOnPostgres(method)) => {
            tracing::warn!("{method} is not yet available on PostgreSQL: skipped at start-up");
            Ok(T::default())
        }
        other => other,
    }
}

/// Tells the store what `[operational]` asks (the automatic disable, the operational
/// automation and its events), creating or re-pointing that automation.
async fn operations(config: &Config, store: &Store) -> anyhow::Result<()> {
    let ops = &config.operational;
    let webhook = ops.webhook_url.clone().map(|url| (url, ops.secret.clone()));
    let installed = store
        .configure_operations(ops.disable_after_ms(), ops.failing_after_attempts, webhook)
        .await
        .context("cannot set up the operational automation")?;
    if let Some((id, generated)) = installed {
        tracing::info!(automation = %id, "operational webhooks go through automation {id}");
        if generated {
            tracing::warn!(
                automation = %id,
                "operational.secret is not set: a signing secret was generated for the \
                 operational webhooks; read it with GET \
                 /v1/processors/automations/endpoints/{id}/secret"
            );
        }
    }
    Ok(())
}

/// Configured keys (admin), plus the stored ones not revoked. Without a valid admin key (none
/// configured, and every stored one revoked, expired or of a lower role), one is generated,
/// printed once, and only its hash stored: there is no unauthenticated mode, and keys can
/// always be managed again.
async fn api_keys(config: &Config, store: &Store) -> anyhow::Result<Keys> {
    let configured = config.api_keys.iter().map(|k| Keys::config_key(k));
    let keys = Keys::new(configured.chain(store.active_keys().await?));
    let now = crate::time::UnixMs::now();
    if !keys.has_admin(now) {
        let key = auth::generate_key(Role::Admin);
        // A later start generates one when every admin key was revoked or expired: the name
        // says which start, so the list tells the keys apart.
        let stored = crate::store::StoredKey {
            id: crate::ids::ApiKeyId::new(),
            name: format!("generated at start, {} (no valid admin key)", now.rfc3339()),
            role: Role::Admin,
            created_at: now,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
        };
        let hash = auth::key_hash(&key);
        if !store.add_first_admin_key(hash, stored.clone(), now).await? {
            // Another instance sharing the database generated one meanwhile (PostgreSQL).
            let configured = config.api_keys.iter().map(|k| Keys::config_key(k));
            return Ok(Keys::new(configured.chain(store.active_keys().await?)));
        }
        println!("No API key configured. Generated admin key (shown once; only its hash is stored):\n  {key}");
        keys.add(auth::ActiveKey {
            hash,
            id: Some(stored.id),
            role: Role::Admin,
            expires_at: None,
        });
    }
    Ok(keys)
}

async fn maintain(store: Store) {
    loop {
        if let Err(e) = store.purge_idempotency_keys().await {
            tracing::warn!(error = %e, "purging idempotency keys failed");
        }
        tokio::time::sleep(MAINTENANCE_EVERY).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PageRequest, StoredKey};
    use crate::time::UnixMs;

    async fn stored_keys(store: &Store) -> Vec<StoredKey> {
        let all = PageRequest { before: None, after: None, limit: 1000, desc: false };
        store.list_keys(all).await.expect("list").items
    }

    /// An admin key is generated when none is valid, and only then: a restart with one
    /// stored generates none, and one whose only stored keys are revoked or of a lower role
    /// gets a new one, so keys can always be managed again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_admin_key_is_generated_only_when_none_is_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config =
            Config { database: Database::Sqlite(dir.path().join("k.db")), ..Config::default() };
        let store = open_store(&config).await.expect("open");
        api_keys(&config, &store).await.expect("first start");
        let first = stored_keys(&store).await;
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].role, Role::Admin);
        api_keys(&config, &store).await.expect("second start");
        assert_eq!(stored_keys(&store).await.len(), 1, "a key was generated beside a valid one");

        let viewer =
            StoredKey { id: crate::ids::ApiKeyId::new(), role: Role::Viewer, ..first[0].clone() };
        store.add_key(auth::key_hash("a viewer key 0123456789"), viewer).await.expect("add");
        store.revoke_key(first[0].id.clone(), UnixMs::now()).await.expect("revoke");
        let keys = api_keys(&config, &store).await.expect("third start");
        assert!(keys.has_admin(UnixMs::now()));
        let now = stored_keys(&store).await;
        let admins = now.iter().filter(|k| k.role == Role::Admin && k.revoked_at.is_none());
        assert_eq!(admins.count(), 1, "no new admin key: {now:?}");

        let configured = Config { api_keys: vec!["configured-admin-key-01".into()], ..config };
        store.revoke_key(now[2].id.clone(), UnixMs::now()).await.expect("revoke");
        api_keys(&configured, &store).await.expect("with a configured key");
        assert_eq!(stored_keys(&store).await.len(), 3, "generated beside a configured key");
    }
}
