"""Deployments running inside the server process, each in its own thread, and an in-process
notification for the alert stream (the stream also polls the database, so alerts from a
``vigil watch`` in another process reach the console too).

The registry only holds threads: starting a run (permission, snapshot, the deployment's
state) and ending or failing it are the service layer's (:mod:`vigil.services.live_runs`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Running:
    deployment_id: int
    runner: object
    thread: threading.Thread
    summary: dict | None = None
    error: str | None = None


@dataclass
class LiveRegistry:
    running: dict[int, Running] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    alert_event: threading.Condition = field(default_factory=threading.Condition)
    alert_counter: int = 0

    def notify(self) -> None:
        with self.alert_event:
            self.alert_counter += 1
            self.alert_event.notify_all()

    def start(self, vigil, actor, deployment_id: int, *, fast: bool, max_seconds: float | None) -> None:
        """Build the run here (a missing source fails the deployment and raises to the caller),
        then run it in a thread. A deployment placed on the cluster runs on its nodes: nothing
        to run here."""
        from vigil.services.live_runs import DeploymentRunner, RunOptions, placed_on_cluster

        if placed_on_cluster(vigil, deployment_id):
            return

        registry = self

        class NotifySink:
            def send(self, payload: dict) -> None:
                if payload.get("type") == "alert":
                    registry.notify()

            def close(self) -> None:
                pass

        runner = DeploymentRunner(vigil, actor, deployment_id, [NotifySink()],
                                  RunOptions(fast=fast, max_seconds=max_seconds))
        entry = Running(deployment_id, runner, None)  # type: ignore[arg-type]

        def run():
            try:
                entry.summary = runner.run().summary
            except Exception as exc:  # the service has failed the deployment; the status page says why
                entry.error = f"{exc.__class__.__name__}: {exc}"

        entry.thread = threading.Thread(target=run, name=f"deployment-{deployment_id}", daemon=True)
        with self.lock:
            self.running[deployment_id] = entry
        entry.thread.start()

    def stop(self, deployment_id: int) -> bool:
        """Stop a run of this process and wait for it to end; False if none is running here."""
        with self.lock:
            entry = self.running.get(deployment_id)
        if entry is None or not entry.thread.is_alive():
            return False
        entry.runner.stop("stopped from the API")
        entry.thread.join(timeout=30)
        return True

    def status(self, deployment_id: int) -> dict | None:
        with self.lock:
            entry = self.running.get(deployment_id)
        if entry is None:
            return None
        runner = entry.runner
        stats = {cam: {"frames": p.stats.frames_processed, "faces_compared": p.stats.faces_compared,
                       "tracks": p.stats.tracks} for cam, p in runner.pipelines.items()}
        return {"running": entry.thread.is_alive(), "error": entry.error, "summary": entry.summary,
                "cameras": [r.health() for r in runner.readers], "pipelines": stats, "alerts": len(runner.alerts)}

    def stop_all(self) -> None:
        for dep_id in list(self.running):
            self.stop(dep_id)
