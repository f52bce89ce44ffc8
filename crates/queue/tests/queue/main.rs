//! Integration tests of the job transport: the same contract tests run
//! against the in-process queue and against a real `redis-server` (started
//! on a unix socket of its own by `hotwasm_tests::RedisServer`), plus what
//! only Redis has (raw entries, trimming, outages), and the reply path's
//! shared-memory side.

mod contract;
mod memory;
mod redis;
mod reply;
