"""``vigil synth crowd``: compose a ground-truth crowd video from real face photos (docs/synth.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli.common import JsonOpt, console, emit, settings

synth_app = typer.Typer(help="Synthetic test media with known ground truth.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth")


@synth_app.command("crowd")
def crowd(
    out: Path = typer.Option(..., "--out", help="Video to write (.mp4; falls back to .avi MJPG)."),
    truth: Path = typer.Option(None, "--truth", help="Truth JSON (default: next to the video, .truth.json)."),
    people: Path = typer.Option(None, "--people", help="Folder of one sub-folder per person (or an LFW root). "
                                                       "Default: the demo portraits in the package."),
    watchlist_size: int = typer.Option(100, "--watchlist-size", help="Identities on the watchlist (>= 2 photos each)."),
    appear: int = typer.Option(None, "--appear", help="Watchlisted people who walk through (default min(N, 40))."),
    others: int = typer.Option(None, "--others", help="Non-watchlisted walkers (default: enough for --density)."),
    width: int = typer.Option(1280, "--width", help="Frame width in pixels."),
    height: int = typer.Option(720, "--height", help="Frame height in pixels."),
    fps: float = typer.Option(25.0, "--fps", help="Frames per second."),
    seconds: float = typer.Option(30.0, "--seconds", help="Length of the video."),
    min_face: int = typer.Option(20, "--min-face", help="Smallest face width (px) at a person's nearest point."),
    max_face: int = typer.Option(90, "--max-face", help="Largest face width (px) at a person's nearest point."),
    density: float = typer.Option(8.0, "--density", help="Target mean number of people on screen."),
    occlusion: float = typer.Option(0.15, "--occlusion", help="Share of the video with a rectangle crossing in front."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same crowd)."),
    manifest: Path = typer.Option(None, "--manifest", help="Write the watchlist enrolment CSV "
                                                          "(path,name,category,reference) for vigil enroll --csv."),
    background: Path = typer.Option(None, "--background", help="Background image instead of a procedural scene."),
    category: str = typer.Option("person-of-interest", "--category", help="Category column of the manifest."),
    references: int = typer.Option(1, "--references", min=1, max=3, help="Enrolment photos per watchlisted person "
                                   "in the manifest (other than the one walking by); a deployment averages up to 3."),
    as_json: bool = JsonOpt,
) -> None:
    """Compose a crowd of real people's photos walking across a scene, with a truth file of who
    appears where and when; some are on the watchlist through a different photo."""
    from vigil.engine.face_engine import FaceEngine
    from vigil.synth import CrowdOptions, generate_crowd
    from vigil.progress import progress_bar
    from vigil.services.collections import check_category

    opts = CrowdOptions(out=out, truth=truth, people_dir=people, watchlist_size=watchlist_size, appear=appear,
                        others=others, width=width, height=height, fps=fps, seconds=seconds, min_face=min_face,
                        max_face=max_face, density=density, occlusion=occlusion, seed=seed, manifest=manifest,
                        background=background, category=check_category(category), references=references)
    engine = FaceEngine.from_settings(settings(), "sface")
    frames = max(1, int(round(seconds * fps)))
    with progress_bar("composing frames", frames, enabled=not as_json) as advance:
        summary = generate_crowd(opts, engine=engine, on_frame=lambda done, total: advance())

    def human(s: dict) -> None:
        console.print(f"[bold]{s['video']}[/] ({s['codec']}, {s['width']}x{s['height']}, {s['frames']} frames) "
                      f"in {s['seconds']} s, {s['size_bytes'] / 1e6:.1f} MB")
        console.print(f"truth: {s['truth']}" + (f"; manifest: {s['manifest']}" if s["manifest"] else ""))
        console.print(f"watchlist {s['watchlist']}; walkers {s['walkers']} ({s['watchlisted_walkers']} watchlisted); "
                      f"{s['mean_people_on_screen']} on screen on average")
        fw = s["face_width_px"]
        console.print(f"{s['visible_face_boxes']} visible face boxes, width {fw['min']}-{fw['max']} px "
                      f"(median {fw['median']}): {fw['histogram']}")
        for note in s["warnings"]:
            console.print(f"[yellow]warning:[/] {note}")

    emit(summary, as_json, human)
