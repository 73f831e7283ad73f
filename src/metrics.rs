//! Every Prometheus metric family, registered into a `Registry` owned by the server (not
//! the global one), so in-process test servers never share counters (STYLE.md rule 6).
//!
//! kura-only families follow `kura_<subsystem>_<name>_<unit>[_total]`; they are updated
//! once per chunk, never per record. The HTTP door serves `registry`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The forward door's telemetry (issue 3 "Telemetry").
pub struct ForwardMetrics {
    /// Records stored.
    pub records: IntCounter,
    /// Request bytes received (whole frames, before decompression).
    pub bytes: IntCounter,
    /// Requests decoded (chunks, and single messages in Message mode).
    pub chunks: IntCounter,
    /// Acks written.
    pub acks: IntCounter,
    /// Chunks acked again without being stored: resends of a chunk id already stored.
    pub duplicates: IntCounter,
    /// Events dropped as invalid inside otherwise good requests (`skip_invalid_event`).
    pub invalid_events: IntCounter,
    /// Requests or streams that could not be decoded, by reason.
    pub decode_errors: IntCounterVec,
    /// Decoded chunks not stored (and so not acked), by reason.
    pub rejected: IntCounterVec,
    /// Open forward connections.
    pub connections: IntGauge,
    /// Forward connections accepted since start.
    pub connections_total: IntCounter,
    /// Handshakes that failed (wrong key, user, or malformed PING).
    pub auth_failures: IntCounter,
    /// UDP heartbeats answered.
    pub heartbeats: IntCounter,
    /// Seconds from a request's last byte arriving to its ack being written.
    pub ack_latency: Histogram,
}

/// The server's metrics and the registry that exports them.
pub struct Metrics {
    /// What `/metrics` gathers.
    pub registry: Registry,
    /// The forward door's families.
    pub forward: ForwardMetrics,
    /// Seconds each background save took, successful or not (INFO keeps only the last).
    pub bgsave_duration: Histogram,
}

/// Reasons `kura_forward_decode_errors_total` is labelled with: the closed set of
/// `forward::message::DecodeError::kind` plus framing-level ones.
pub const DECODE_REASONS: &[&str] = &[
    "not_array",
    "bad_length",
    "bad_tag",
    "bad_option",
    "unknown_compression",
    "decompress",
    "decompressed_too_large",
    "corrupt",
    "mapped_too_large",
    "invalid_event",
    "framing",
    "oversized",
];

/// Reasons `kura_forward_chunks_rejected_total` is labelled with.
pub const REJECT_REASONS: &[&str] = &[
    "oom",
    "readonly",
    "store_error",
    "unsupported_signal",
    "no_route",
    "noreplicas",
];

/// Registers a family built from constant names and options; a failure is a programming
/// error (a bad or duplicate name), caught by the first test that starts a server.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    made: prometheus::Result<M>,
) -> M {
    let m = made.unwrap_or_else(|e| panic!("metric definition: {e}"));
    registry
        .register(Box::new(m.clone()))
        .unwrap_or_else(|e| panic!("metric registration: {e}"));
    m
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| register(&registry, IntCounter::new(name, help));
        let labelled = |name: &str, help: &str, values: &[&str]| {
            let c = register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), &["reason"]),
            );
            // Every series exists from the start, at 0, so rate() and alerts see them.
            for v in values {
                c.with_label_values(&[v]);
            }
            c
        };
        let forward = ForwardMetrics {
            records: counter(
                "kura_forward_records_received_total",
                "Records received on the forward door and stored.",
            ),
            bytes: counter(
                "kura_forward_bytes_received_total",
                "Bytes of forward requests received, before decompression.",
            ),
            chunks: counter(
                "kura_forward_chunks_received_total",
                "Forward requests (chunks or messages) decoded.",
            ),
            acks: counter(
                "kura_forward_chunks_acked_total",
                "Acks written to forward clients.",
            ),
            duplicates: counter(
                "kura_forward_duplicate_chunks_total",
                "Chunks whose id was already stored: acked again, not stored twice.",
            ),
            invalid_events: counter(
                "kura_forward_invalid_events_total",
                "Events dropped because their time or record is invalid.",
            ),
            decode_errors: labelled(
                "kura_forward_decode_errors_total",
                "Forward requests or streams that could not be decoded, by reason.",
                DECODE_REASONS,
            ),
            rejected: labelled(
                "kura_forward_chunks_rejected_total",
                "Decoded forward chunks that were not stored (so not acked), by reason.",
                REJECT_REASONS,
            ),
            connections: register(
                &registry,
                IntGauge::new("kura_forward_connections", "Open forward connections."),
            ),
            connections_total: counter(
                "kura_forward_connections_total",
                "Forward connections accepted.",
            ),
            auth_failures: counter(
                "kura_forward_auth_failures_total",
                "Forward handshakes that failed.",
            ),
            heartbeats: counter(
                "kura_forward_udp_heartbeats_total",
                "UDP heartbeats answered on the forward port.",
            ),
            ack_latency: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "kura_forward_ack_latency_seconds",
                        "Seconds from a request's last byte to its ack.",
                    )
                    .buckets(vec![
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0, 2.5,
                    ]),
                ),
            ),
        };
        let bgsave_duration = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "kura_bgsave_duration_seconds",
                    "Seconds each background save (BGSAVE, save points) took.",
                )
                .buckets(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                    600.0,
                ]),
            ),
        );
        Metrics {
            registry,
            forward,
            bgsave_duration,
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("families", &self.registry.gather().len())
            .finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_registered_with_their_labels() {
        let m = Metrics::new();
        m.forward
            .decode_errors
            .with_label_values(&["corrupt"])
            .inc();
        let names: Vec<String> = m
            .registry
            .gather()
            .iter()
            .map(|f| f.get_name().to_string())
            .collect();
        assert!(names.contains(&"kura_forward_decode_errors_total".to_string()));
        assert!(names.contains(&"kura_forward_ack_latency_seconds".to_string()));
        let errs = m
            .registry
            .gather()
            .into_iter()
            .find(|f| f.get_name() == "kura_forward_decode_errors_total")
            .map(|f| f.get_metric().len());
        assert_eq!(errs, Some(DECODE_REASONS.len()));
    }
}
