//! `/metrics` in Prometheus' text format (prometheus-client): queue depth, submissions by
//! status, run and queue-wait latency, sandbox overhead (setup and teardown), worker
//! states, HTTP requests by status code. Queue depth, workers and `submissions` are
//! cluster-wide; the rest count this process.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    pub queue_depth: Gauge,
    pub finished: Family<Labels, Counter>,
    pub run_seconds: Histogram,
    pub queue_seconds: Histogram,
    pub sandbox_seconds: Histogram,
    pub workers: Family<Labels, Gauge>,
    pub submissions: Family<Labels, Gauge>,
    pub requests: Family<Labels, Counter>,
    pub callbacks: Family<Labels, Counter>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("judgebox");
        let queue_depth = Gauge::default();
        let finished = Family::<Labels, Counter>::default();
        let run_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let queue_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 18));
        let sandbox_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let workers = Family::<Labels, Gauge>::default();
        let submissions = Family::<Labels, Gauge>::default();
        let requests = Family::<Labels, Counter>::default();
        let callbacks = Family::<Labels, Counter>::default();
        registry.register(
            "queue_depth",
            "Submissions waiting in the queue",
            queue_depth.clone(),
        );
        registry.register(
            "submissions_finished",
            "Submissions this process finished, by Judge0 status",
            finished.clone(),
        );
        registry.register(
            "run_seconds",
            "Time from a worker claiming a submission to its result",
            run_seconds.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Time a submission waited in the queue",
            queue_seconds.clone(),
        );
        registry.register(
            "sandbox_overhead_seconds",
            "Judging time outside the programs' own run time (sandbox setup and teardown, cgroups, copies)",
            sandbox_seconds.clone(),
        );
        registry.register(
            "workers",
            "Workers of every process by state (idle, busy, lost)",
            workers.clone(),
        );
        registry.register(
            "submissions",
            "Stored submissions of the whole cluster by Judge0 status",
            submissions.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by status code",
            requests.clone(),
        );
        registry.register("callbacks", "Callbacks by outcome", callbacks.clone());
        Metrics {
            registry,
            queue_depth,
            finished,
            run_seconds,
            queue_seconds,
            sandbox_seconds,
            workers,
            submissions,
            requests,
            callbacks,
        }
    }

    pub fn label(key: &str, value: impl ToString) -> Labels {
        vec![(key.to_string(), value.to_string())]
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
