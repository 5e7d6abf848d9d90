"""One alert record for every kind of finding, and its JSON-lines form.

    Alert(kind, severity, dt, title, detail="", uri="", rank=0.0, rule="", source="")

``kind`` says which stage found it (``KINDS``), ``severity`` how much it matters (info < warning <
critical), ``dt`` the date it is about, ``title`` one line for a person, ``rule`` the rule that
fired in plain words ("negative share 48% vs 12% baseline, q=0.003 < 0.05"), ``uri`` the report
in the lake that explains it, ``rank`` orders alerts of the same severity (larger first; e.g.
how far past its threshold a value is), ``source`` the writer (a DAG id), set by the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace

from reviewflow.config import SEVERITIES

KINDS = ("product", "bias", "drift", "realised_quality", "gate", "ingest", "task_failure")
SEVERITY_LEVEL = {name: level for level, name in enumerate(SEVERITIES)}  # info 0, warning 1, critical 2


@dataclass(frozen=True)
class Alert:
    kind: str
    severity: str
    dt: str
    title: str
    detail: str = ""
    uri: str = ""
    rank: float = 0.0
    rule: str = ""
    source: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"alert kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.severity not in SEVERITY_LEVEL:
            raise ValueError(f"alert severity {self.severity!r}: expected one of {', '.join(SEVERITIES)}")
        if not self.title:
            raise ValueError("an alert needs a title")
        object.__setattr__(self, "rank", float(self.rank or 0.0))

    @property
    def level(self) -> int:
        return SEVERITY_LEVEL[self.severity]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Alert:
        """An alert from its dict; keys this version does not know are ignored (newer writers)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_source(self, source: str) -> Alert:
        return replace(self, source=source)


def at_least(alerts: Iterable[Alert], min_severity: str) -> list[Alert]:
    """The alerts whose severity reaches ``min_severity``."""
    floor = SEVERITY_LEVEL[min_severity]
    return [a for a in alerts if a.level >= floor]


def ranked(alerts: Iterable[Alert]) -> list[Alert]:
    """Most severe first, then the largest rank; ties in a stable, readable order."""
    return sorted(alerts, key=lambda a: (-a.level, -a.rank, a.dt, a.kind, a.title, a.source))


def to_json_lines(alerts: Iterable[Alert]) -> bytes:
    return "".join(json.dumps(a.to_dict(), sort_keys=True, allow_nan=False) + "\n" for a in alerts).encode("utf-8")


def from_json_lines(data: bytes | str) -> list[Alert]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return [Alert.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
