"""The anomaly detector's rules over the audit stream: pure, deterministic, event-time only.

`Detector.observe(message)` takes one audit message (the CloudEvents dict) and returns the
alerts it raises. Time is the message's `time`, never the wall clock, and windows are
tumbling windows aligned to the epoch, so the same stream gives the same alerts however
often it is replayed; an alert's id is derived from its rule, subject and window, so a
replay publishes the same ids. One alert per rule, subject and window: later events in a
window that already alerted raise nothing more. The whole state is a JSON-able dict
(`state()`), stored with the consumer's offsets so a restart neither repeats nor misses.

Rules (thresholds in `Thresholds`, each a `KEYLEDGER_DETECT_*` setting):
A security observation stands for `data.count` requests (1 when absent): every rule counts
them all, so a message with count 50 counts as 50 failures.

- brute_force: at least N failed authentications for one client id, or from one source IP
  against more than one client id (one client hammered from one address is the client's
  alert already), in a window of W seconds.
- issuance_spike: a client's tokens in one bucket above k times its own trailing baseline (an
  EWMA of earlier buckets, empty ones included) and at or above a floor, once it has history.
- retired_secret_use: an authentication with a secret that was rotated out, expired or
  revoked: a leaked old secret (one alert per client per window).
- scope_probing: repeated `invalid_scope` / `invalid_target` from one client in a window.
- inactive_client_use: requests from a suspended or deleted client (per client per window).
- new_source_network: a client issued a token from a /24 (IPv4) or /64 (IPv6) network it never
  used, after its learning period (one alert per client and network).
- ledger_inconsistent: a ledger checkpoint that does not extend the ones published before it,
  or whose note does not verify (`domain.ledger_watch`); critical.
- ledger_tampered: the store no longer gives a signed checkpoint's root (raised by the
  detector's periodic `ledger verify`, not from one message); critical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from domain.checkpoint import SignatureCheck
from domain.ledger_watch import CHECKPOINT_SIGNED, KEY_GENERATED, LedgerWatch
from domain.networks import source_network

AUTH_FAILED = "keyledger.security.authentication_failed.v1"
REJECTED = "keyledger.security.token_request_rejected.v1"
ISSUED = "keyledger.token.issued.v1"
ALERT_IDS = uuid5(NAMESPACE_URL, "urn:keyledger:alert")
MAX_EVIDENCE = 50
MAX_NETWORKS = 256
RETIRED_REASONS = ("revoked_secret", "expired_secret")
INACTIVE_REASONS = ("client_suspended", "client_deleted")
PROBES = ("invalid_scope", "invalid_target")

SEVERITY = {
    "brute_force": "high",
    "issuance_spike": "medium",
    "retired_secret_use": "high",
    "scope_probing": "medium",
    "inactive_client_use": "medium",
    "new_source_network": "low",
    "ledger_inconsistent": "critical",
    "ledger_tampered": "critical",
}
RULES = tuple(SEVERITY)


@dataclass(frozen=True)
class Thresholds:
    brute_force_failures: int = 10
    brute_force_window: int = 60
    spike_factor: float = 50.0
    spike_floor: int = 100
    spike_bucket: int = 60
    spike_alpha: float = 0.2
    spike_min_history: int = 5
    probe_rejections: int = 5
    probe_window: int = 300
    retired_window: int = 3600
    inactive_window: int = 3600
    network_learning: int = 86_400


@dataclass(frozen=True)
class Alert:
    """One raised alert, with the ids of the audit messages that are its evidence."""

    id: str
    rule: str
    severity: str
    subject: str
    subject_kind: str
    window_start: datetime
    window_end: datetime
    first_seen: datetime
    last_seen: datetime
    count: int
    threshold: int
    evidence: tuple[str, ...]
    summary: str
    secret_generation: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("window_start", "window_end", "first_seen", "last_seen"):
            d[name] = d[name].isoformat()
        d["evidence"] = list(self.evidence)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alert:
        times = ("window_start", "window_end", "first_seen", "last_seen")
        values: dict[str, Any] = {
            k: datetime.fromisoformat(v) if k in times else v for k, v in d.items()
        }
        values["evidence"] = tuple(d["evidence"])
        return cls(**values)


@dataclass
class _Tally:
    window: int
    count: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    evidence: list[str] = field(default_factory=list)
    alerted: bool = False
    distinct: list[str] = field(default_factory=list)


@dataclass
class _Issuance:
    bucket: int
    count: int = 0
    baseline: float = 0.0
    history: int = 0
    first_seen: float = 0.0
    evidence: list[str] = field(default_factory=list)
    alerted: bool = False


@dataclass
class _Networks:
    first_seen: float
    networks: list[str] = field(default_factory=list)


def _count_of(data: dict[str, Any]) -> int:
    """The requests a message stands for: `count` when a positive integer, else 1."""
    count = data.get("count", 1)
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1


def _epoch(at: datetime) -> float:
    return at.timestamp()


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class Detector:
    """Folds audit messages into rule state and returns the alerts each one raises."""

    def __init__(
        self,
        thresholds: Thresholds,
        state: dict[str, Any] | None = None,
        verify_note: SignatureCheck | None = None,
    ) -> None:
        self.thresholds = thresholds
        self._ledger = LedgerWatch(verify_note, (state or {}).get("ledger"))
        self._tallies: dict[str, _Tally] = {}
        self._issuance: dict[str, _Issuance] = {}
        self._networks: dict[str, _Networks] = {}
        self._watermark = 0.0
        self._seen = 0
        if state:
            self._tallies = {k: _Tally(**v) for k, v in state["tallies"].items()}
            self._issuance = {k: _Issuance(**v) for k, v in state["issuance"].items()}
            self._networks = {k: _Networks(**v) for k, v in state["networks"].items()}
            self._watermark = state["watermark"]
            self._seen = state["seen"]

    def state(self) -> dict[str, Any]:
        return {
            "tallies": {k: asdict(v) for k, v in self._tallies.items()},
            "issuance": {k: asdict(v) for k, v in self._issuance.items()},
            "networks": {k: asdict(v) for k, v in self._networks.items()},
            "watermark": self._watermark,
            "seen": self._seen,
            "ledger": self._ledger.state(),
        }

    def observe(self, message: dict[str, Any]) -> list[Alert]:
        kind = message.get("type")
        data = message.get("data") or {}
        try:
            at = _epoch(datetime.fromisoformat(message["time"]))
        except (KeyError, TypeError, ValueError):
            return []  # not an audit message this detector can place in time
        event_id = str(message.get("id", ""))
        self._watermark = max(self._watermark, at)
        self._seen += 1
        if self._seen % 10_000 == 0:
            self._prune()
        if kind in (CHECKPOINT_SIGNED, KEY_GENERATED):
            return self._ledger_alerts(kind, data, at, event_id)
        alerts: list[Alert | None] = []
        t = self.thresholds
        weight = _count_of(data)
        if kind == AUTH_FAILED:
            reason = data.get("reason")
            client, ip = data.get("client_id"), data.get("source_ip")
            if client:
                alerts.append(
                    self._count(
                        "brute_force",
                        "client",
                        client,
                        at,
                        event_id,
                        t.brute_force_failures,
                        t.brute_force_window,
                        weight=weight,
                    )
                )
            if ip:
                alerts.append(
                    self._count(
                        "brute_force",
                        "source_ip",
                        ip,
                        at,
                        event_id,
                        t.brute_force_failures,
                        t.brute_force_window,
                        distinct=client or "",
                        weight=weight,
                    )
                )
            if client and reason in RETIRED_REASONS:
                alerts.append(
                    self._count(
                        "retired_secret_use",
                        "client",
                        client,
                        at,
                        event_id,
                        1,
                        t.retired_window,
                        data.get("secret_generation"),
                        weight=weight,
                    )
                )
            if client and reason in INACTIVE_REASONS:
                alerts.append(
                    self._count(
                        "inactive_client_use",
                        "client",
                        client,
                        at,
                        event_id,
                        1,
                        t.inactive_window,
                        weight=weight,
                    )
                )
        elif kind == REJECTED:
            client = data.get("client_id")
            if client and data.get("error") in PROBES:
                alerts.append(
                    self._count(
                        "scope_probing",
                        "client",
                        client,
                        at,
                        event_id,
                        t.probe_rejections,
                        t.probe_window,
                        weight=weight,
                    )
                )
        elif kind == ISSUED:
            client = str(message.get("subject", ""))
            alerts.append(self._issued(client, at, event_id))
            alerts.append(self._network(client, data.get("source_ip"), at, event_id))
        return [a for a in alerts if a is not None]

    def _count(
        self,
        rule: str,
        subject_kind: str,
        subject: str,
        at: float,
        event_id: str,
        threshold: int,
        window: int,
        generation: int | None = None,
        *,
        distinct: str | None = None,
        weight: int = 1,
    ) -> Alert | None:
        """Count `weight` requests into the subject's tumbling window; alert once at the threshold.

        With `distinct`, the alert also needs at least two different values of it (the
        client ids one source address tried).
        """
        key = f"{rule}|{subject_kind}|{subject}"
        start = int(at // window) * window
        tally = self._tallies.get(key)
        if tally is None or start > tally.window:
            tally = self._tallies[key] = _Tally(window=start, first_seen=at, last_seen=at)
        elif start < tally.window:
            return None  # older than the subject's current window: too late to count
        tally.count += weight
        tally.first_seen = min(tally.first_seen, at)
        tally.last_seen = max(tally.last_seen, at)
        if len(tally.evidence) < MAX_EVIDENCE:
            tally.evidence.append(event_id)
        if distinct is not None and distinct not in tally.distinct and len(tally.distinct) < 2:
            tally.distinct.append(distinct)
        if tally.alerted or tally.count < threshold:
            return None
        if distinct is not None and len(tally.distinct) < 2:
            return None
        tally.alerted = True
        return self._alert(
            rule,
            subject_kind,
            subject,
            start,
            start + window,
            tally.first_seen,
            tally.last_seen,
            tally.count,
            threshold,
            tally.evidence,
            generation,
        )

    def _issued(self, client: str, at: float, event_id: str) -> Alert | None:
        t = self.thresholds
        bucket = int(at // t.spike_bucket) * t.spike_bucket
        state = self._issuance.get(client)
        if state is None:
            state = self._issuance[client] = _Issuance(bucket=bucket, first_seen=at)
        elif bucket > state.bucket:
            self._close_buckets(state, bucket)
            state.first_seen = at
        elif bucket < state.bucket:
            return None
        state.count += 1
        if len(state.evidence) < MAX_EVIDENCE:
            state.evidence.append(event_id)
        limit = max(t.spike_floor, t.spike_factor * state.baseline)
        if state.alerted or state.history < t.spike_min_history or state.count <= limit:
            return None
        state.alerted = True
        return self._alert(
            "issuance_spike",
            "client",
            client,
            bucket,
            bucket + t.spike_bucket,
            state.first_seen,
            at,
            state.count,
            int(limit) + 1,
            state.evidence,
            summary=f"{state.count} tokens in {t.spike_bucket} s against a baseline of "
            f"{state.baseline:.1f}",
        )

    def _close_buckets(self, state: _Issuance, bucket: int) -> None:
        """Fold the finished bucket (and any empty ones since) into the baseline."""
        alpha = self.thresholds.spike_alpha
        state.baseline = (
            float(state.count)
            if state.history == 0
            else alpha * state.count + (1 - alpha) * state.baseline
        )
        state.history += 1
        empty = min(int((bucket - state.bucket) // self.thresholds.spike_bucket) - 1, 1000)
        state.baseline *= (1 - alpha) ** max(empty, 0)
        state.history += max(empty, 0)
        state.bucket, state.count, state.evidence, state.alerted = bucket, 0, [], False

    def _network(self, client: str, ip: Any, at: float, event_id: str) -> Alert | None:
        network = source_network(ip if isinstance(ip, str) else None)
        if network is None:
            return None
        known = self._networks.get(client)
        if known is None:
            self._networks[client] = _Networks(first_seen=at, networks=[network])
            return None
        if network in known.networks:
            return None
        if len(known.networks) < MAX_NETWORKS:
            known.networks.append(network)
        if at - known.first_seen < self.thresholds.network_learning:
            return None  # still learning where this client comes from
        return self._alert(
            "new_source_network",
            "client",
            client,
            int(known.first_seen),
            int(at),
            at,
            at,
            1,
            1,
            [event_id],
            summary=f"first token from {network}",
            key=network,
        )

    def _ledger_alerts(
        self, kind: str, data: dict[str, Any], at: float, event_id: str
    ) -> list[Alert]:
        finding = self._ledger.observe(kind, data)
        if finding is None:
            return []
        return [
            self._alert(
                "ledger_inconsistent",
                "ledger",
                finding.origin,
                at,
                at,
                at,
                at,
                1,
                1,
                [event_id],
                summary=finding.summary,
                key=str(finding.size),
            )
        ]

    def _alert(
        self,
        rule: str,
        subject_kind: str,
        subject: str,
        start: float,
        end: float,
        first_seen: float,
        last_seen: float,
        count: int,
        threshold: int,
        evidence: list[str],
        generation: int | None = None,
        *,
        summary: str | None = None,
        key: str = "",
    ) -> Alert:
        what = {
            "brute_force": "failed authentications",
            "retired_secret_use": "authentications with a retired secret",
            "scope_probing": "rejected scope or resource requests",
            "inactive_client_use": "requests from a suspended or deleted client",
        }.get(rule, rule)
        return Alert(
            id=str(uuid5(ALERT_IDS, f"{rule}|{subject_kind}|{subject}|{start}|{key}")),
            rule=rule,
            severity=SEVERITY[rule],
            subject=subject,
            subject_kind=subject_kind,
            window_start=_time(start),
            window_end=_time(end),
            first_seen=_time(first_seen),
            last_seen=_time(last_seen),
            count=count,
            threshold=threshold,
            evidence=tuple(evidence),
            summary=summary or f"{count} {what} in {int(end - start)} s",
            secret_generation=generation,
        )

    def _prune(self) -> None:
        """Forget windows that ended long before the newest event time (bounded memory)."""
        horizon = self._watermark - 2 * max(
            self.thresholds.brute_force_window,
            self.thresholds.probe_window,
            self.thresholds.retired_window,
            self.thresholds.inactive_window,
        )
        self._tallies = {k: v for k, v in self._tallies.items() if v.last_seen >= horizon}
