"""Store commands: init, galleries, watchlists, enrolment, search, subjects."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from vigil.cli.common import CursorOpt, JsonOpt, LimitOpt, PackOpt, console, emit, emit_page, settings
from vigil.cli.common_ctx import ctx
from vigil.errors import VigilError

gallery_app = typer.Typer(help="Reference galleries for retrospective search.", no_args_is_help=True)
watchlist_app = typer.Typer(help="Watchlists for live deployments.", no_args_is_help=True)
subject_app = typer.Typer(help="Enrolled subjects: show, erase, export.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(enroll)
    app.command("enrol", hidden=True)(enroll)  # the docs' and the API's spelling works too
    app.command()(search)
    app.add_typer(gallery_app, name="gallery")
    app.add_typer(watchlist_app, name="watchlist")
    app.add_typer(subject_app, name="subject")


def init(as_json: bool = JsonOpt) -> None:
    """Create keys (mode 0600), the database and the first admin (password printed once)."""
    from vigil.services import get_vigil

    vigil = get_vigil(settings())
    first = vigil.first_run
    data = {"home": str(vigil.store.home), "initialised_now": bool(first),
            "admin": first["admin"] if first else None, "password": first["password"] if first else None}
    emit(data, as_json, lambda d: console.print(
        f"Data directory {d['home']} " + ("initialised (the admin password was printed above, once)."
                                          if d["initialised_now"] else "was already initialised.")))


# ----------------------------------------------------------------------------- collections
def _withdrawn(d: dict) -> None:
    """Say which watchlists lost their authorisation because of this command, and why."""
    for w in d.get("authorisation_withdrawn", []):
        console.print(f"  [yellow]authorisation withdrawn[/] from watchlist {w['watchlist']!r}: {w['because']}; "
                      "a supervisor must authorise it again before a deployment can use it")


def _create(kind: str, name: str, pack: str | None, purpose: str, legal_basis: str, expires: str | None,
            category: str, as_json: bool) -> None:
    from vigil.services.collections import create_collection
    from vigil.timeutil import parse_when

    vigil, actor = ctx()
    data = create_collection(vigil, actor, kind, name, pack=pack, purpose=purpose, legal_basis=legal_basis,
                             category=category, expires_at=parse_when(expires, end_of_day=True) if expires else None)
    emit(data, as_json, lambda d: console.print(f"Created {kind} {d['name']!r} (id {d['id']}, {d['model_id']})"))


def _list(kind: str, as_json: bool, limit: int, cursor: str | None) -> None:
    from vigil.services.collections import list_collections

    vigil, actor = ctx()
    page = list_collections(vigil, actor, kind, cursor=cursor, limit=limit)

    def human(rs):
        table = Table(title=f"{kind.title()}s")
        for col in ("id", "name", "pack", "subjects", "status", "authorised by", "expires"):
            table.add_column(col)
        for r in rs:
            table.add_row(str(r["id"]), r["name"], r["pack"], str(r["subjects"]), r["status"],
                          r["authorised_by"] or "-", r["expires_at"] or "-")
        console.print(table)

    emit_page(page, as_json, human, f"vigil {kind} list")


def _subjects(kind: str, name: str, search: str | None, as_json: bool, limit: int, cursor: str | None) -> None:
    from vigil.services.collections import collection_members

    vigil, actor = ctx()
    page = collection_members(vigil, actor, kind, name, q=search, cursor=cursor, limit=limit)

    def human(rows):
        table = Table(title=f"Subjects of {kind} {name!r}" + (f" matching {search!r}" if search else ""))
        for col in ("id", "name", "category", "reference"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["id"], r["name"], r["category"], r["reference"] or "-")
        console.print(table)

    more = f" --search {search!r}" if search else ""
    emit_page(page, as_json, human, f"vigil {kind} subjects {name!r}{more}")


SearchOpt = typer.Option(None, "--search", help="Only subjects whose name or reference contains this.")


def _show(kind: str, name: str, as_json: bool) -> None:
    from vigil.services.collections import show_collection

    vigil, actor = ctx()
    emit(show_collection(vigil, actor, kind, name), as_json, lambda d: console.print_json(json.dumps(d)))


def _delete(kind: str, name: str, reason: str, as_json: bool) -> None:
    from vigil.services.collections import delete_collection

    vigil, actor = ctx()
    summary = delete_collection(vigil, actor, kind, name, reason)
    emit(summary, as_json, lambda d: console.print(
        f"Deleted {kind} {d['name']!r}: {d['subjects_erased']} subjects erased, "
        f"{d['subjects_kept_elsewhere']} kept (enrolled elsewhere too)"))


@gallery_app.command("create")
def gallery_create(name: str,
                   pack: str = PackOpt,
                   purpose: str = typer.Option("", "--purpose", help="What it is for (recorded)."),
                   legal_basis: str = typer.Option("", "--legal-basis", help="The legal basis for it."),
                   as_json: bool = JsonOpt) -> None:
    """Create a gallery (its pack decides the templates it keeps)."""
    _create("gallery", name, pack, purpose, legal_basis, None, "reference", as_json)


@gallery_app.command("list")
def gallery_list(limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """Galleries with their size, model and status."""
    _list("gallery", as_json, limit, cursor)


@gallery_app.command("subjects")
def gallery_subjects(name: str, search: str = SearchOpt, limit: int = LimitOpt, cursor: str = CursorOpt,
                   as_json: bool = JsonOpt) -> None:
    """The gallery's subjects by name, a page at a time."""
    _subjects("gallery", name, search, as_json, limit, cursor)


@gallery_app.command("show")
def gallery_show(name: str, as_json: bool = JsonOpt) -> None:
    """One gallery: purpose, legal basis, size, model."""
    _show("gallery", name, as_json)


@gallery_app.command("delete")
def gallery_delete(name: str,
                   reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
                   as_json: bool = JsonOpt) -> None:
    """Delete a gallery and erase the subjects enrolled only in it."""
    _delete("gallery", name, reason, as_json)


@watchlist_app.command("create")
def watchlist_create(
    name: str, pack: str = PackOpt, purpose: str = typer.Option(..., "--purpose", help="What it is for (recorded)."),
    legal_basis: str = typer.Option("", "--legal-basis", help="The legal basis for it."),
    expires: str = typer.Option(None, "--expires", help="Expiry: a date (YYYY-MM-DD: the end of that day, UTC) or a date-time."),
    category: str = typer.Option("wanted", "--category", help="Default category of its subjects."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a watchlist for live deployments (needs authorising before use)."""
    _create("watchlist", name, pack, purpose, legal_basis, expires, category, as_json)


@watchlist_app.command("list")
def watchlist_list(limit: int = LimitOpt, cursor: str = CursorOpt, as_json: bool = JsonOpt) -> None:
    """Watchlists with their size, model, status, who authorised them and expiry."""
    _list("watchlist", as_json, limit, cursor)


@watchlist_app.command("subjects")
def watchlist_subjects(name: str, search: str = SearchOpt, limit: int = LimitOpt, cursor: str = CursorOpt,
                   as_json: bool = JsonOpt) -> None:
    """The watchlist's subjects by name, a page at a time."""
    _subjects("watchlist", name, search, as_json, limit, cursor)


@watchlist_app.command("show")
def watchlist_show(name: str, as_json: bool = JsonOpt) -> None:
    """One watchlist: purpose, legal basis, size, who authorised it."""
    _show("watchlist", name, as_json)


@watchlist_app.command("authorise")
def watchlist_authorise(name: str,
                        note: str = typer.Option("", "--note", help="Recorded with the authorisation."),
                        as_json: bool = JsonOpt) -> None:
    """Authorise a watchlist's current content (supervisor). Any later edit withdraws it."""
    from vigil.services.collections import authorise_watchlist

    vigil, actor = ctx()
    data = authorise_watchlist(vigil, actor, name, note)
    emit(data, as_json, lambda d: console.print(f"Watchlist {d['name']!r} authorised by {d['authorised_by']}"))


@watchlist_app.command("expire")
def watchlist_expire(name: str, as_json: bool = JsonOpt) -> None:
    """Expire a watchlist now: no deployment may use it any more (audited)."""
    from vigil.services.collections import expire_collection

    vigil, actor = ctx()
    data = expire_collection(vigil, actor, "watchlist", name)
    emit(data, as_json, lambda d: console.print(f"Watchlist {d['name']!r} expired"))


@watchlist_app.command("delete")
def watchlist_delete(name: str,
                     reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
                     as_json: bool = JsonOpt) -> None:
    """Delete a watchlist with a reason (erasing subjects only it holds needs subject.delete)."""
    _delete("watchlist", name, reason, as_json)


@watchlist_app.command("add")
def watchlist_add(name: str,
                  subject_id: str = typer.Option(..., "--subject", help="The subject's id."),
                  as_json: bool = JsonOpt) -> None:
    """Put an already-enrolled subject (e.g. from a gallery) on a watchlist."""
    from vigil.services.subjects import add_subject_to_collection

    vigil, actor = ctx()
    result = add_subject_to_collection(vigil, actor, "watchlist", name, subject_id)

    def human(d):
        console.print(f"Subject {d['subject_id']} added to watchlist {name!r}")
        _withdrawn(d)

    emit(result, as_json, human)


@watchlist_app.command("remove")
def watchlist_remove(name: str,
                     subject_id: str = typer.Option(..., "--subject", help="The subject's id."),
                     as_json: bool = JsonOpt) -> None:
    """Take a subject off a watchlist (withdraws its authorisation)."""
    from vigil.services.subjects import remove_subject_from_collection

    vigil, actor = ctx()
    result = remove_subject_from_collection(vigil, actor, "watchlist", name, subject_id)

    def human(d):
        console.print(f"Subject {d['subject_id']} removed from watchlist {name!r}")
        _withdrawn(d)

    emit(result, as_json, human)


# ----------------------------------------------------------------------------- enrolment
def enroll(
    image: Path = typer.Argument(None, help="One image (with --name)."),
    name: str = typer.Option(None, "--name", help="Display name of the subject (one image)."),
    gallery: str = typer.Option(None, "--gallery", help="The gallery (or --watchlist)."),
    watchlist: str = typer.Option(None, "--watchlist", help="The watchlist (or --gallery)."),
    folder: Path = typer.Option(None, "--dir", help="One sub-folder of images per subject."),
    manifest: Path = typer.Option(None, "--csv", help="CSV with columns path,name,category,reference."),
    category: str = typer.Option(None, "--category", help="e.g. wanted, missing."),
    reference: str = typer.Option("", "--reference", help="Case or warrant reference."),
    subject: str = typer.Option(None, "--subject", help="Add the image to this existing subject."),
    face: int = typer.Option(None, "--face", min=1, help="Which face of a group photo to enrol (1 = leftmost, "
                             "as 'vigil detect' numbers them); one image only."),
    allow_low_quality: bool = typer.Option(False, "--allow-low-quality",
                                           help="Keep faces that fail the quality gate (recorded, audited): "
                                                "for importing an existing collection as it is."),
    as_json: bool = JsonOpt,
) -> None:
    """Enrol faces into a gallery or watchlist: one image, a folder per subject, or a CSV."""
    from vigil.services.enrolment import EnrolItem, enrol_files, items_from_csv, items_from_dir

    if bool(gallery) == bool(watchlist):
        raise VigilError("name exactly one of --gallery or --watchlist")
    sources = [x for x in (image, folder, manifest) if x is not None]
    if len(sources) != 1:
        raise VigilError("give exactly one of IMAGE, --dir or --csv")
    if image is not None and not (name or subject):
        raise VigilError("enrolling one image needs --name (or --subject)")
    if face is not None and image is None:
        raise VigilError("--face chooses a face of one image; it does not apply to --dir or --csv")
    vigil, actor = ctx()
    kind, cname = ("gallery", gallery) if gallery else ("watchlist", watchlist)
    if image is not None:
        items = [(image, EnrolItem(str(image), name or "", category, reference, subject, face=face))]
    elif folder is not None:
        items = items_from_dir(folder)
    else:
        items = items_from_csv(manifest)
    if category:
        for _, item in items:
            item.category = item.category or category
    data = enrol_files(vigil, actor, kind, cname, items, quality_gate=not allow_low_quality,
                       show_progress=not as_json)

    def human(d):
        console.print(f"enrolled {d['enrolled']}, skipped {d['skipped']} (already enrolled), "
                      f"rejected {len(d['rejected'])}")
        for r in d["rejected"][:20]:
            console.print(f"  [yellow]rejected[/] {r['source']}: {'; '.join(r['reasons'])}")
        for w in d["warnings"][:20]:
            console.print(f"  [yellow]warning[/] {w['source']}: {w['warning']}")
        _withdrawn(d)

    emit(data, as_json, human)
    if image is not None and data["rejected"]:
        raise typer.Exit(2)


# ----------------------------------------------------------------------------- search
def search(
    probe: Path = typer.Argument(..., help="Probe image or video."),
    gallery: str = typer.Option(None, "--gallery", help="The gallery (or --watchlist)."),
    watchlist: str = typer.Option(None, "--watchlist", help="The watchlist (or --gallery)."),
    top: int = typer.Option(50, "--top", help="Candidates per face (at most 200)."),
    case: str = typer.Option("", "--case", help="Case reference (required)."),
    reason: str = typer.Option("", "--reason", help="Why this search is needed (required)."),
    sheet: Path = typer.Option(None, "--sheet", help="Also export an HTML contact sheet to this path."),
    as_json: bool = JsonOpt,
) -> None:
    """Search every face in a probe against a gallery: ranked candidates for a person to review."""
    from vigil.services.search import run_search

    if bool(gallery) == bool(watchlist):
        raise VigilError("name exactly one of --gallery or --watchlist")
    if not probe.is_file():
        raise VigilError(f"{probe}: file not found")
    vigil, actor = ctx()
    kind, cname = ("gallery", gallery) if gallery else ("watchlist", watchlist)
    result = run_search(vigil, actor, kind, cname, case_ref=case, reason=reason, top=top, path=probe,
                        probe_name=probe.name, sheet=sheet, show_progress=not as_json)

    def human(r):
        console.print(f"Search {r['id']} in {r['gallery']} ({r['gallery_subjects']} subjects), "
                      f"case {r['case_ref']}: {len(r['faces'])} face(s)")
        for i, f in enumerate(r["faces"], 1):
            seen = (f" seen at {f['time']:.1f} s into the video (best of {f['shots']} shots, track {f['track_id']})"
                    if f.get("time") is not None else "")
            console.print(f"[bold]face {i}[/] at {f['box']} quality {f['quality']:.2f}{seen}")
            for w in f["warnings"]:
                console.print(f"  [yellow]{w}[/]")
            threshold = r["threshold_fmr_1e-4"]
            table = Table(show_header=True)
            for col in ("rank", "subject", "name", "score", "FMR", "expected false at this score", "threshold"):
                table.add_column(col)
            for c in f["candidates"][:10]:
                table.add_row(str(c["rank"]), c["subject_id"], c["name"], f"{c['score']:.3f}",
                              f"{c['fmr']:.1e}", f"{c['expected_false_candidates_at_this_score']:.2g}",
                              "[bold blue]above[/]" if c["score"] >= threshold else "below")
            console.print(table)
        console.print(f"Threshold (1 in 10,000 false match rate): score {r['threshold_fmr_1e-4']:.3f}.")
        if r.get("contact_sheet"):
            console.print(f"Contact sheet written to {r['contact_sheet']}")
        console.print("Candidates are leads for a person to review, not identifications.")

    emit(result, as_json, human)


# ----------------------------------------------------------------------------- subjects
@subject_app.command("show")
def subject_show(subject_id: str, as_json: bool = JsonOpt) -> None:
    """One subject: name, category, reference, collections and images."""
    from vigil.services.subjects import show_subject

    vigil, actor = ctx()
    emit(show_subject(vigil, actor, subject_id), as_json, lambda d: console.print_json(json.dumps(d)))


@subject_app.command("delete")
def subject_delete(subject_id: str,
                   reason: str = typer.Option(..., "--reason", help="Why (recorded)."),
                   as_json: bool = JsonOpt) -> None:
    """Erase a subject everywhere: images, templates, index entries, watchlist snapshots."""
    from vigil.services.subjects import erase_subject

    vigil, actor = ctx()
    summary = erase_subject(vigil, actor, subject_id, reason)

    def human(d):
        console.print(f"Erased {subject_id}: {d['images']} images, {d['templates']} templates, "
                      f"{d['snapshot_entries']} snapshot entries; {d['alerts_stripped']} alerts stripped of images")
        for r in d.get("shards", []):
            shards = ", ".join(f"shard {k}: {n}" for k, n in r["replicas_per_shard"].items()) or "none live"
            down = (f"; down (they rebuild from the database, without it): {', '.join(r['replicas_down'])}"
                    if r["replicas_down"] else "")
            console.print(f"Erased from the shards of gallery {r['gallery']!r}: {len(r['replicas_confirmed'])} "
                          f"replica(s) confirmed ({shards}){down}", markup=False, highlight=False)
        _withdrawn(d)

    emit(summary, as_json, human)


@subject_app.command("export")
def subject_export(subject_id: str,
                   out: Path = typer.Option(..., "--out", help="A new folder to write into (files mode 0600)."),
                   as_json: bool = JsonOpt) -> None:
    """Subject access: gather everything held about one subject into DIR (an audited export)."""
    from vigil.services.subjects import export_subject

    vigil, actor = ctx()
    data = export_subject(vigil, actor, subject_id, out)
    emit(data, as_json, lambda d: console.print(f"Exported {d['files']} files about {subject_id} to {d['path']}"))
