"""What a supervisor authorises (issue #15): before approving a deployment they see exactly
what it will do, in its numbers.

For each watchlist: its size (subjects listed), how many of them are enrolled from 1, 2 or 3
photos (a deployment averages up to ``live.references`` photos into one entry), category,
whether it is itself authorised, its expiry. For the deployment: the total entries, the
threshold each category's accepted false alert rate gives at that size (per-comparison false
match rate = rate / entries, through the watchlists' model calibration; entries averaging 2 or
3 photos have their own, ``by_photos``), the expected false alerts per 10,000 faces seen (the
accepted rate), the share of genuine comparisons the calibration data puts below the threshold
(what a stricter threshold costs in misses), the window, the cameras and the legal basis.

The figures are the plan's: the snapshot taken at start freezes the watchlists as they are
then, and a watchlist that changes after authorisation loses its authorisation.
"""

from __future__ import annotations

from sqlalchemy import select

from vigil.engine.calibration import entry_threshold
from vigil.governance.permissions import Actor
from vigil.services.unit import use_case
from vigil.store.collections import collection_size
from vigil.store.deployments import describe, get_deployment
from vigil.store.schema import Collection
from vigil.store.snapshots import photos_per_subject
from vigil.timeutil import as_utc, iso, utcnow


def authorisation_view(vigil, actor: Actor, deployment_id) -> dict:
    """The plan with the numbers an authorising officer needs (``deployment.view``)."""
    with use_case(vigil, actor, "deployment.view") as uow:
        dep = get_deployment(uow.session, deployment_id)
        described = describe(uow.session, dep)
        colls = list(uow.session.scalars(select(Collection).where(Collection.id.in_(dep.watchlist_ids or []))))
        now = utcnow()
        lists = [{"name": c.name, "subjects": collection_size(uow.session, c.id), "category": c.category,
                  "pack": c.pack, "authorised": c.authorised_by is not None, "authorised_by": c.authorised_by,
                  "expires_at": iso(c.expires_at),
                  "expired": c.status == "expired" or (c.expires_at is not None and as_utc(c.expires_at) <= now),
                  "_photos": photos_per_subject(uow.session, c)}
                 for c in colls]
        pack = colls[0].pack if colls else None
    entries = sum(w["subjects"] for w in lists)
    engine = vigil.engine(pack)
    calibration = engine.pack.calibration
    # a subject enrolled from several photos is one entry averaging up to this many of them
    averaged = engine.pack.supported_references(vigil.settings.live.references)
    for w in lists:
        photos = [min(n, averaged) for n in w.pop("_photos")]
        w["subjects_by_photos"] = {str(k): photos.count(k) for k in sorted(set(photos))}
    counts = sorted({int(k) for w in lists for k in w["subjects_by_photos"]} - {1})
    tables = {1: calibration, **{k: engine.pack.calibration_for(k) for k in counts}}

    def plan(k: int, rate: float) -> dict:
        threshold = entry_threshold(tables, k, rate / max(entries, 1))
        fnmr = getattr(tables[k], "fnmr_at", lambda _s: None)(threshold)
        return {"threshold": round(threshold, 5), "expected_miss_rate": None if fnmr is None else round(fnmr, 4)}

    rates = {"default": dep.false_alert_rate, **{f"category:{k}": v for k, v in (dep.category_rates or {}).items()}}
    thresholds = {}
    for key, rate in rates.items():
        thresholds[key] = {"accepted_false_alerts_per_10000_faces": round(rate * 10_000, 4),
                           "per_comparison_fmr": rate / max(entries, 1), **plan(1, rate),
                           **({"by_photos": {str(k): plan(k, rate) for k in counts}} if counts else {})}
    problems = [f"watchlist {w['name']!r} is not authorised" for w in lists if not w["authorised"]]
    problems += [f"watchlist {w['name']!r} has expired" for w in lists if w["expired"]]
    problems += [f"watchlist {w['name']!r} is empty" for w in lists if w["subjects"] == 0]
    return {**described, "watchlists_detail": lists, "watchlist_entries": entries, "thresholds": thresholds,
            "photos_averaged_at_most": averaged, "calibration": calibration.dataset,
            "problems": problems,
            "miss_rate_note": "Expected misses: the share of genuine comparisons in the calibration data that "
                              "score below the threshold (an entry of one good photo; `by_photos`: entries "
                              "averaging that many photos, which miss less); real cameras, small or turned "
                              "faces miss more"}
