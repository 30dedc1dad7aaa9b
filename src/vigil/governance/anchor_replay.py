"""What the anchor says the audit log must hold: replay its signed heads in order.

Between two restores (an *epoch*) every anchored head names one entry: its sequence number
and hash. The log must still hold each of them unchanged and may not end before the newest.
Two different hashes for one entry mean the log was rolled back and written again; unless a
restore follows, that is tampering. A ``restore`` record starts a new epoch: the heads after
the restored one belong to the log the restore replaced and are reported as discarded, and
the entries the backup holds must match one of the versions the anchor recorded for them (a
backup altered after it was anchored is caught). A restore into a fresh data directory (whose
own first entry differs from the original's) is explained the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AnchorReplay:
    expected: dict[int, dict] = field(default_factory=dict)  # seq -> {"hashes": [...], "ts"}, current epoch
    top: dict | None = None  # the newest anchored head of the current epoch: {"seq", "ts"}
    conflicts: dict[int, str] = field(default_factory=dict)  # seq -> when a second version was anchored
    restores: list[dict] = field(default_factory=list)
    restore_entries: set[int] = field(default_factory=set)
    first_bad: int | None = None
    reason: str | None = None
    records: int = 0

    def expect(self, seq: int, digest: str, ts: str) -> None:
        known = self.expected.get(seq)
        if known is None:
            self.expected[seq] = {"hashes": [digest], "ts": ts}
        elif digest not in known["hashes"]:
            known["hashes"].append(digest)
            self.conflicts.setdefault(seq, ts)
        if self.top is None or seq > self.top["seq"]:
            self.top = {"seq": seq, "ts": ts}


def replay(records: list[dict]) -> AnchorReplay:
    state = AnchorReplay(records=len(records))
    for record in records:
        if record["event"] == "restore":
            _restore(state, record)
        else:
            state.expect(record["seq"], record["hash"], record["ts"])
    if state.conflicts:
        seq = min(state.conflicts)
        state.first_bad, state.reason = seq, (
            f"the anchor holds two different entries {seq} (published {state.expected[seq]['ts']} and "
            f"{state.conflicts[seq]}) with no restore after them: the log was rolled back to before entry {seq} "
            "and written again")
    return state


def _restore(state: AnchorReplay, record: dict) -> None:
    """A restore explains every rollback before it: the heads after the restored one belong to
    the log it replaced (reported as discarded), and other versions of earlier entries were
    replaced with that log (reported too); the backup itself must match what was anchored."""
    replaced, restored = record.get("replaced") or None, record.get("restored") or None
    replaced_seq = int(replaced["seq"]) if replaced else 0
    restored_seq = int(restored["seq"]) if restored else 0
    anchored_before = state.top["seq"] if state.top else 0
    newest = max(replaced_seq, anchored_before)
    state.restores.append({
        "entry": record["seq"], "published": record["ts"], "restored_head": restored_seq,
        "replaced_head": replaced_seq, "anchored_before": anchored_before,
        "discarded": [restored_seq + 1, newest] if newest > restored_seq else None,
        "other_versions": sorted(state.conflicts)})
    state.conflicts.clear()
    for seq in [s for s in state.expected if s > restored_seq]:
        del state.expected[seq]
    state.top = None
    for seq, known in state.expected.items():
        if state.top is None or seq > state.top["seq"]:
            state.top = {"seq": seq, "ts": known["ts"]}
    state.restore_entries.add(record["seq"])
    state.expect(record["seq"], record["hash"], record["ts"])


def describe_restores(restores: list[dict]) -> str | None:
    """One sentence per restore, for the human output of ``vigil audit verify``."""
    parts = []
    for r in restores:
        lost = (f"entries {r['discarded'][0]} to {r['discarded'][1]} of the replaced log were discarded"
                if r["discarded"] else "no anchored entry was discarded")
        parts.append(f"a restore (entry {r['entry']}, anchored {r['published']}) replaced a log that ended at entry "
                     f"{r['replaced_head']} (the anchor had recorded up to {r['anchored_before']}) with a backup "
                     f"ending at {r['restored_head']}: {lost}")
    return "; ".join(parts) or None
