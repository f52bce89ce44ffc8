//! Integration tests of the job transport: the same contract tests run
//! against the in-process queue and against a real `redis-server` (started
//! on a free port by `hotwasm_tests::RedisServer`), plus what only Redis
//! has (raw entries, trimming, outages).

mod contract;
mod memory;
mod redis;
