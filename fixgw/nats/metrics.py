"""The NATS transport's Prometheus metrics, in the gateway's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class NatsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.connected = Gauge(
            "fixgw_nats_connected", "1 while connected to the NATS broker", registry=r
        )
        self.acked_seq = Gauge(
            "fixgw_nats_acked_seq",
            "The last event seq the stream acknowledged (every journaled event up to it is in)",
            registry=r,
        )
        self.backlog = Gauge(
            "fixgw_nats_backlog",
            "Journal head seq less the last acknowledged seq",
            registry=r,
        )
        self.publish_lag = Gauge(
            "fixgw_nats_publish_lag_seconds",
            "At the last acknowledgement from the stream: its time less its event's",
            registry=r,
        )
        self.published = Counter(
            "fixgw_nats_published_total",
            "Events the stream acknowledged, by outcome (stored, duplicate)",
            ["outcome"],
            registry=r,
        )
        self.failures = Counter(
            "fixgw_nats_publish_failures_total",
            "Times publishing stopped and started again from the last acknowledged event "
            "(no acknowledgement in time, the stream refused one, the connection ended)",
            registry=r,
        )
        self.commands = Counter(
            "fixgw_nats_commands_total",
            "Requests on the cmd subject, by outcome (ok, error; no_reply_subject: not taken)",
            ["outcome"],
            registry=r,
        )
        self.market_data_dropped = Counter(
            "fixgw_nats_market_data_dropped_total",
            "Market-data lines not published (no connection to the broker, the queue's bound, "
            "refused by the broker); their consumers are told",
            registry=r,
        )
        self.stored = self.published.labels("stored")
        self.duplicate = self.published.labels("duplicate")
