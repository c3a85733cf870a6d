//! Wake-ups across instances (docs/postgres.md, "Wake-ups"): the transactions that make
//! deliveries due now (ingest leaving some unclaimed, a release, the end of a FIFO head)
//! `NOTIFY hookrelay_due`, which PostgreSQL delivers at their commit, coalesced per
//! transaction. Each instance holds one connection outside the pool that `LISTEN`s on it and
//! wakes its dispatcher. The dispatcher's poll stays, as the fallback: a notification sent
//! while the connection is down is lost, so a lost connection also wakes the dispatcher, and
//! the listener connects again after [`RECONNECT`].

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use super::{describe, tls, Pg};

/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

impl Pg {
    /// Starts this instance's listener: `wake` runs on each notification on
    /// `hookrelay_due` and whenever the listening connection is lost. It stops once the pool
    /// is closed.
    pub(crate) fn listen(&self, wake: impl Fn() + Send + Sync + 'static) {
        let pg = self.clone();
        tokio::spawn(async move {
            while !pg.pool.is_closed() {
                if let Err(reason) = pg.listen_once(&wake).await {
                    tracing::warn!(
                        database = %pg.target, %reason,
                        "PostgreSQL: the connection listening for due deliveries was lost; \
                         polling until it is back"
                    );
                }
                wake();
                tokio::time::sleep(RECONNECT).await;
            }
        });
    }

    /// One listening connection, until it fails or the pool closes.
    async fn listen_once(&self, wake: &(impl Fn() + Send + Sync)) -> Result<(), String> {
        let tls = tls().map_err(|e| e.to_string())?;
        let (client, mut connection) = self.config.connect(tls).await.map_err(|e| describe(&e))?;
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let listen = client.batch_execute("LISTEN hookrelay_due");
        // The LISTEN's answer comes through the connection, driven by the stream below.
        tokio::pin!(listen);
        let mut listening = false;
        loop {
            tokio::select! {
                done = &mut listen, if !listening => {
                    done.map_err(|e| describe(&e))?;
                    listening = true;
                    // What came due while nobody listened is found by a claim now.
                    wake();
                }
                message = messages.next() => match message {
                    Some(Ok(AsyncMessage::Notification(_))) => wake(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(describe(&e)),
                    None => return Err("the server closed the connection".into()),
                },
                _ = tokio::time::sleep(RECONNECT) => if self.pool.is_closed() {
                    return Ok(());
                },
            }
        }
    }
}
