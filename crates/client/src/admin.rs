//! Module administration, statistics and verification on a running server
//! over gRPC (`hotwasm.v1.Verifier`).
//!
//! ```no_run
//! # async fn run() -> Result<(), hotwasm_client::admin::AdminError> {
//! use hotwasm_client::admin::AdminClient;
//! let mut server = AdminClient::connect("http://127.0.0.1:50051").await?;
//! let version = server.activate_module("schnorr@3f1c").await?;
//! println!("now serving {}", version.id);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use hotwasm_auth::AdminToken;
use hotwasm_jobs::Job;
use hotwasm_proto::v1;
use hotwasm_proto::v1::verifier_client::VerifierClient;
use tonic::transport::{Channel, Endpoint};

pub use hotwasm_proto::v1::{ListModulesResponse, ModuleVersion, StatsResponse, Verdict};

/// How long [`AdminClient::connect`] waits for the server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response the client accepts, in bytes: above any server's
/// default, so the server's limit is the one that applies.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why an administration call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The URL is not one a gRPC channel can use.
    #[error("{url:?} is not a usable server URL: {reason} (expected e.g. http://127.0.0.1:50051)")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error(
        "cannot connect to the hotwasm server at {url}: {reason} (is `hotwasm serve` running there with its gRPC API on that address? check --server / HOTWASM_SERVER)"
    )]
    Connect {
        /// The server's URL.
        url: String,
        /// The transport's error, with its causes.
        reason: String,
    },
    /// The server did not answer the connection in time.
    #[error(
        "connecting to the hotwasm server at {url} timed out after {timeout:?} (is it running, and is the address reachable from here?)"
    )]
    ConnectTimeout {
        /// The server's URL.
        url: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The server answered the call with an error status.
    #[error("{call} on {url} failed: {message} ({code:?})")]
    Call {
        /// The server's URL.
        url: String,
        /// The RPC, e.g. `ActivateModule`.
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
}

impl AdminError {
    /// The gRPC status code, when the server answered with one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            AdminError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A connection to one server's gRPC API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    url: String,
    client: VerifierClient<Channel>,
    /// `Bearer NAME:SECRET`, sent with administration requests.
    authorization: Option<tonic::metadata::AsciiMetadataValue>,
}

/// How to reach a server: connect timeout, TLS trust, admin token.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// How long to wait for the connection (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]).
    pub timeout: Duration,
    /// The CA certificate(s), PEM, that sign the server's TLS certificate;
    /// needed for an `https://` URL.
    pub tls_ca_pem: Option<Vec<u8>>,
    /// The admin token sent with `LoadModule`, `ActivateModule` and
    /// `RollbackModule`.
    pub token: Option<AdminToken>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: DEFAULT_CONNECT_TIMEOUT,
            tls_ca_pem: None,
            token: None,
        }
    }
}

impl AdminClient {
    /// Connects to `url` (`http://HOST:PORT`), waiting at most
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// [`AdminError::BadUrl`], [`AdminError::Connect`] or
    /// [`AdminError::ConnectTimeout`], saying where and what to check.
    pub async fn connect(url: &str) -> Result<AdminClient, AdminError> {
        AdminClient::connect_with_timeout(url, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Connects to `url`, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`AdminClient::connect`].
    pub async fn connect_with_timeout(
        url: &str,
        timeout: Duration,
    ) -> Result<AdminClient, AdminError> {
        AdminClient::connect_with(
            url,
            &ConnectOptions {
                timeout,
                ..ConnectOptions::default()
            },
        )
        .await
    }

    /// Connects to `url` (`http://` or, with a CA, `https://`) as
    /// `options` say.
    ///
    /// # Errors
    ///
    /// As [`AdminClient::connect`]; [`AdminError::BadUrl`] for `https://`
    /// without a CA, or a CA that is not PEM.
    pub async fn connect_with(
        url: &str,
        options: &ConnectOptions,
    ) -> Result<AdminClient, AdminError> {
        let timeout = options.timeout;
        let bad = |reason: String| AdminError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| bad(causes(&e)))?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        let scheme = endpoint.uri().scheme_str().map(str::to_string);
        match (scheme.as_deref(), &options.tls_ca_pem) {
            (Some("https"), Some(ca)) => {
                endpoint = endpoint
                    .tls_config(
                        tonic::transport::ClientTlsConfig::new()
                            .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                    )
                    .map_err(|e| bad(causes(&e)))?;
            }
            (Some("https"), None) => {
                return Err(bad(
                    "https:// needs the CA that signed the server's certificate (--tls-ca FILE)"
                        .to_string(),
                ));
            }
            _ => {}
        }
        let uri = endpoint.uri();
        let problem = if !matches!(uri.scheme_str(), Some("http" | "https")) {
            Some("the scheme must be http:// or https://")
        } else if uri.host().is_none_or(str::is_empty) {
            Some("no host")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(AdminError::BadUrl {
                url: url.to_string(),
                reason: problem.to_string(),
            });
        }
        let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => {
                return Err(AdminError::Connect {
                    url: url.to_string(),
                    reason: causes(&e),
                });
            }
            Err(_) => {
                return Err(AdminError::ConnectTimeout {
                    url: url.to_string(),
                    timeout,
                });
            }
        };
        let mut client = AdminClient::from_channel(url, channel);
        if let Some(token) = &options.token {
            client.authorization = Some(
                token
                    .bearer()
                    .parse()
                    .map_err(|_| bad("the admin token is not ASCII".to_string()))?,
            );
        }
        Ok(client)
    }

    /// `message` as a request carrying the admin token, if any.
    fn admin_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    /// A client over an existing channel; `url` only names it in errors.
    pub fn from_channel(url: &str, channel: Channel) -> AdminClient {
        AdminClient {
            url: url.to_string(),
            client: VerifierClient::new(channel)
                .max_decoding_message_size(MAX_RESPONSE_BYTES)
                .max_encoding_message_size(usize::MAX),
            authorization: None,
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The generated client, for calls this type has no function for
    /// (streaming, deadlines per request).
    pub fn raw(&self) -> VerifierClient<Channel> {
        self.client.clone()
    }

    /// Validates (compile, waPC shape, self-test) and stores `wasm` as a
    /// version of `name` on the server; with `activate`, or when it is the
    /// name's first version, it also starts serving.
    ///
    /// # Errors
    ///
    /// [`AdminError::Call`]: `PERMISSION_DENIED` for a module no key the
    /// server trusts signed, `INVALID_ARGUMENT` for a refused module or a
    /// bad name, `FAILED_PRECONDITION` for a server without a registry.
    pub async fn load_module(
        &mut self,
        name: &str,
        wasm: Vec<u8>,
        activate: bool,
    ) -> Result<ModuleVersion, AdminError> {
        let request = v1::LoadModuleRequest {
            name: name.to_string(),
            wasm,
            activate,
            // The CLI embeds a detached signature before sending.
            signature: Vec::new(),
        };
        let answer = self.client.load_module(self.admin_request(request)).await;
        self.answer("LoadModule", answer)
    }

    /// Makes `version` (`name@hash`, any unique hash prefix of 4+ digits)
    /// the one serving its name; workers switch at their next call.
    ///
    /// # Errors
    ///
    /// [`AdminError::Call`]: `NOT_FOUND` for an unknown version,
    /// `INVALID_ARGUMENT` for an ambiguous one or one refused on the
    /// server's runtime (the serving version stays).
    pub async fn activate_module(&mut self, version: &str) -> Result<ModuleVersion, AdminError> {
        let request = v1::ActivateModuleRequest {
            version: version.to_string(),
        };
        let answer = self
            .client
            .activate_module(self.admin_request(request))
            .await;
        self.answer("ActivateModule", answer)
    }

    /// Returns `name` to the version active before.
    ///
    /// # Errors
    ///
    /// [`AdminError::Call`]: `FAILED_PRECONDITION` when there is no
    /// previous version.
    pub async fn rollback_module(&mut self, name: &str) -> Result<ModuleVersion, AdminError> {
        let request = v1::RollbackModuleRequest {
            name: name.to_string(),
        };
        let answer = self
            .client
            .rollback_module(self.admin_request(request))
            .await;
        self.answer("RollbackModule", answer)
    }

    /// The server's stored versions and the module serving each scheme.
    ///
    /// # Errors
    ///
    /// [`AdminError::Call`] when the registry cannot be read.
    pub async fn list_modules(&mut self) -> Result<ListModulesResponse, AdminError> {
        let answer = self.client.list_modules(v1::ListModulesRequest {}).await;
        self.answer("ListModules", answer)
    }

    /// The server's counters.
    ///
    /// # Errors
    ///
    /// [`AdminError::Call`] when the call fails.
    pub async fn stats(&mut self) -> Result<StatsResponse, AdminError> {
        let answer = self.client.stats(v1::StatsRequest {}).await;
        self.answer("Stats", answer)
    }

    /// Verifies one job on the server.
    ///
    /// # Errors
    ///
    /// [`AdminError::Call`] when the call fails; a bad job is a verdict
    /// with `valid: false`, not an error.
    pub async fn verify(&mut self, job: &Job) -> Result<Verdict, AdminError> {
        let answer = self.client.verify(verify_request(job)).await;
        self.answer("Verify", answer)
    }

    /// Verifies `jobs` in one call; verdicts in the order of the jobs.
    ///
    /// # Errors
    ///
    /// [`AdminError::Call`]: `RESOURCE_EXHAUSTED` when the batch (or its
    /// answer) is over the server's message size limit.
    pub async fn submit_batch(&mut self, jobs: &[Job]) -> Result<Vec<Verdict>, AdminError> {
        let request = v1::SubmitBatchRequest {
            jobs: jobs.iter().map(verify_request).collect(),
        };
        let answer = self.client.submit_batch(request).await;
        self.answer("SubmitBatch", answer)
            .map(|response| response.verdicts)
    }

    fn answer<T>(
        &self,
        call: &'static str,
        answer: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, AdminError> {
        answer
            .map(tonic::Response::into_inner)
            .map_err(|status| AdminError::Call {
                url: self.url.clone(),
                call,
                code: status.code(),
                message: status.message().to_string(),
            })
    }
}

/// The `VerifyRequest` for `job` (its `expect` stays with the caller).
pub fn verify_request(job: &Job) -> v1::VerifyRequest {
    v1::VerifyRequest {
        id: job.id.clone(),
        scheme: job.scheme.as_str().to_string(),
        public_key: job.public_key.clone(),
        signature: job.signature.clone(),
        message: job.message.clone(),
    }
}

/// An error and its causes on one line: tonic's transport errors say
/// little at the top ("transport error").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
