//! The benchmark's end-to-end runner: `hotwasm-bench` describes a pipeline
//! run, `hotwasm-client` performs it (an in-process server on the chosen
//! queue, the real client). This file only translates between the two.

use std::sync::Arc;

use hotwasm_bench::{PipelineConfig, PipelineRun, PipelineRunner, ResultsVia, Transport};
use hotwasm_client::pipeline::PipelineOptions;
use hotwasm_client::{Outgoing, SubmitOptions, Summary};
use hotwasm_jobs::Job;
use hotwasm_queue::{MemoryQueue, RedisOptions, RedisQueue};
use hotwasm_server::ServerConfig;
use hotwasm_server::consume::ConsumeOptions;

/// The runner the bench calls for its end-to-end rows.
pub fn runner() -> Arc<PipelineRunner> {
    Arc::new(|config: &PipelineConfig, jobs: &[Job]| {
        run(config, jobs).map_err(|e| format!("{e:#}"))
    })
}

fn run(config: &PipelineConfig, jobs: &[Job]) -> anyhow::Result<PipelineRun> {
    let jobs: Vec<Outgoing> = jobs.iter().map(Outgoing::from).collect();
    let mut server = ServerConfig::new(config.runtime);
    server.variant = Some(config.variant.clone());
    server.workers = config.workers.max(1);
    let submit = SubmitOptions {
        results: match config.results {
            ResultsVia::Shm => hotwasm_client::ResultsVia::Shm { slots: 4096 },
            ResultsVia::Redis => hotwasm_client::ResultsVia::Stream,
        },
        ..SubmitOptions::new()
    };
    let options = PipelineOptions {
        server,
        consume: ConsumeOptions::default(),
        submit,
    };
    // Module administration validates guests on blocking threads: give
    // them a stack fit for guests (see `GUEST_THREAD_STACK_BYTES`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(hotwasm_runtime::GUEST_THREAD_STACK_BYTES)
        .build()?;
    let summary = runtime.block_on(async {
        match &config.transport {
            Transport::Embedded => anyhow::Ok(
                hotwasm_client::pipeline::run(
                    Arc::new(MemoryQueue::new()),
                    &jobs,
                    options,
                    &|_| {},
                )
                .await?,
            ),
            Transport::Redis(url) => {
                // A stream and group of the run's own, so servers of a real
                // deployment on the same Redis are not disturbed.
                let mut redis = RedisOptions::new(url);
                redis.stream = format!("hotwasm:bench:{}", options.submit.client);
                redis.group = format!("hotwasm-bench-{}", options.submit.client);
                redis.dead_letters = format!("{}:dead", redis.stream);
                let queue = Arc::new(RedisQueue::connect(redis.clone()).await?);
                let summary =
                    hotwasm_client::pipeline::run(Arc::clone(&queue), &jobs, options, &|_| {})
                        .await;
                for key in [&redis.stream, &redis.dead_letters] {
                    let _ = queue.delete_stream(key).await;
                }
                anyhow::Ok(summary?)
            }
        }
    })?;
    Ok(into_run(summary))
}

fn into_run(summary: Summary) -> PipelineRun {
    PipelineRun {
        verdicts: summary.verdicts,
        mismatches: summary.mismatch_count,
        missing: summary.missing,
        elapsed: summary.elapsed,
        latencies_micros: summary.latencies_micros,
    }
}
