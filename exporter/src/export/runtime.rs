//! The exporter's own tokio runtime, on its own thread. The SDK's batch
//! processor calls `export` from a plain thread with `block_on` (no reactor),
//! so requests are spawned here and only their `JoinHandle` is awaited there.
//! The runtime is built, driven and dropped on its thread, so dropping the
//! exporter from inside someone else's async context cannot panic.

use crate::error::ConfigError;
use std::future::Future;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Owns the runtime thread; it stops when this is dropped.
#[derive(Debug)]
pub(crate) struct RuntimeThread {
    handle: Handle,
    // Dropping the sender wakes the thread, which then drops the runtime.
    _stop: oneshot::Sender<()>,
}

impl RuntimeThread {
    pub(crate) fn start() -> Result<Self, ConfigError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("otelite-exporter".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                // Tasks still pending are dropped with the runtime, here.
            })
            .map_err(|e| ConfigError::Runtime(e.to_string()))?;
        let handle = ready_rx
            .recv()
            .map_err(|e| ConfigError::Runtime(e.to_string()))?
            .map_err(ConfigError::Runtime)?;
        Ok(Self {
            handle,
            _stop: stop_tx,
        })
    }

    /// Runs `task` on the exporter's runtime. Once the runtime is gone the
    /// handle resolves at once with a cancellation error, so awaiting it never hangs.
    pub(crate) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }
}
