//! SIGINT / SIGTERM as a shutdown signal any number of tasks can wait for.

use tokio::sync::watch;

/// Fires once, on the first SIGINT or SIGTERM.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Starts listening for the signals.
    pub fn on_signals() -> Shutdown {
        let (fire, receiver) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!(
                "hotwasm: shutting down, finishing work in flight (signal again to stop at once)"
            );
            let _ = fire.send(true);
            wait_for_signal().await;
            eprintln!("hotwasm: stopped without finishing");
            std::process::exit(130);
        });
        Shutdown(receiver)
    }

    /// Completes when the signal has come.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.clone();
        async move {
            let _ = receiver.wait_for(|fired| *fired).await;
        }
    }
}

async fn wait_for_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
