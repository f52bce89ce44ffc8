//! SIGINT / SIGTERM as a shutdown signal any number of tasks can wait for,
//! with a bound on how long finishing may take.

use std::time::Duration;

use tokio::sync::watch;

/// Fires once, on the first SIGINT or SIGTERM.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Starts listening for the signals. After the first, work in flight
    /// has `grace` to finish; past it, or on a second signal, the process
    /// exits at once. Jobs not acknowledged by then stay pending in the
    /// queue for another server: nothing is lost.
    pub fn on_signals(grace: Duration) -> Shutdown {
        let (fire, receiver) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!(
                "hotwasm: shutting down, finishing work in flight for at most {:.1} s \
                 (signal again to stop at once)",
                grace.as_secs_f64()
            );
            let _ = fire.send(true);
            tokio::select! {
                _ = wait_for_signal() => {
                    eprintln!("hotwasm: stopped without finishing");
                    std::process::exit(130);
                }
                _ = tokio::time::sleep(grace) => {
                    eprintln!(
                        "hotwasm: the {:.1} s shutdown grace period passed; stopping without \
                         finishing (unacknowledged jobs stay pending for another server)",
                        grace.as_secs_f64()
                    );
                    std::process::exit(1);
                }
            }
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
