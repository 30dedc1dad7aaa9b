"""One settings object for the whole of Vigil.

Values come, highest priority first, from: keyword arguments, ``VIGIL_*`` environment
variables (nested fields with ``__``, e.g. ``VIGIL_ENGINE__THREADS=2``), a TOML file
(``VIGIL_CONFIG`` or ``$VIGIL_HOME/vigil.toml``), then the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vigil.errors import VigilError


def default_home() -> Path:
    env = os.environ.get("VIGIL_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("vigil", appauthor=False))


class EngineSettings(BaseModel):
    pack: str = "sface"
    threads: int = Field(0, description="ONNX Runtime intra-op threads; 0 = all cores")
    execution_provider: str = Field("auto", description="ONNX Runtime execution provider: auto (TensorRT, CUDA "
                                    "or OpenVINO when installed, else the CPU), cpu, cuda, tensorrt, openvino")
    batch_size: int = Field(2, description="faces per network run (x2 with flip); SFace is fastest per face "
                            "at 2-4 (larger batches fall out of cache: 13 ms/face at 16)")
    flip_augment: bool = True
    detection_score: float = 0.6
    detection_nms: float = 0.3
    # Stills: the resolution cap of the detail pass (tiled above 1,920 px). 3,840 keeps 4K
    # photos at full resolution: faces of ~18 px were found 100% of the time at full resolution
    # against 84% at 2,048 (bench/results/detection_scales.json), for ~0.1 s more per 4K photo.
    max_detector_side: int = 3840
    # The smallest face (pixels between the eyes) enrolment accepts.
    min_eye_distance_enrol: float = 24.0


class CustomPackSettings(BaseModel):
    """A site's own ArcFace-style recogniser (112x112 aligned input)."""

    model_path: str | None = None
    model_id: str | None = None
    input_mean: float = 127.5
    input_std: float = 127.5
    rgb: bool = True
    calibration_path: str | None = None


class QualitySettings(BaseModel):
    min_score_enrol: float = 0.5
    min_eye_distance: float = 24.0
    max_yaw_degrees: float = 40.0
    max_roll_degrees: float = 30.0
    min_sharpness: float = 0.15
    min_brightness: float = 40.0
    max_brightness: float = 220.0
    min_detection_score: float = 0.7


class LiveSettings(BaseModel):
    """Live pipeline tuning (measured choices: docs/live.md, bench/live_crowd.py)."""

    detect_every: int = Field(3, description="full-frame detection every N processed frames; ROI detection between")
    detect_full_side: int = Field(1280, description="frames up to this long side are detected at full resolution")
    detect_max_side: int = Field(960, description="larger frames: the full-frame pass at this long side, the "
                                 "small faces it misses found by the rotating full-resolution detail tiles")
    detail_tile: int = Field(640, description="side of the full-resolution detail tiles; each full-frame "
                             "detection also runs one of them, in turn (0 = none)")
    roi_size: int = Field(160, description="each region of interest around a track is resized to this square")
    min_eye_distance: float = Field(7.0, description="live gate: smallest face compared with the watchlist")
    min_detection_score: float = Field(0.6, description="a detection must reach this to start a track or be embedded")
    track_detection_score: float = Field(0.45, description="weaker detections may extend an existing track")
    frame_buffer: int = Field(3, description="newest frames kept per camera; older ones are dropped (counted)")
    max_shots: int = Field(6, description="best shots embedded per track (template averaging)")
    references: int = Field(3, ge=1, le=3, description="reference photos of a watchlisted subject averaged into "
                            "one mean template when a deployment starts (best quality first; 1 = each photo its "
                            "own entry); needs the pack's mean-template calibration tables")
    reembed_gain: float = Field(0.08, description="re-embed when quality improves by this much")
    embed_budget: int = Field(4, description="most faces embedded per processed frame (spreads bursts)")
    live_embed_budget: int = Field(1, description="live (frames that can be dropped), no frame waiting: most "
                                   "faces embedded per frame (see first_shot_wait for a frame behind)")
    first_shot_wait: float = Field(0.5, description="live, frames waiting: a new track's first shot waits at most "
                                   "this long (re-embeddings wait for a frame with time to spare)")
    dedup_seconds: float = Field(10.0, description="same subject within this window = one alert")
    track_max_gap: float = Field(0.8, description="seconds a track survives without a detection")
    confirm_m: int = Field(1, description="M-of-N: alert when M of the last N shot scores pass")
    confirm_n: int = 1
    thumbnail_width: int = 640
    evidence_clip_seconds: float = Field(0.0, description="seconds kept before and after an alert for an "
                                         "evidence clip (0 = no clips; frames then never outlive processing)")
    evidence_clip_width: int = 960
    media_root: Path | None = Field(None, description="registered file and folder cameras must lie under this "
                                    "folder (default: media/ in the data directory)")


class AuditSettings(BaseModel):
    """The audit chain's external anchor (docs/security.md, "The audit chain and its anchor")."""

    anchor: str | None = Field(None, description="where signed heads are published outside the data directory: "
                               "a file path (append-only log, another volume or account) or "
                               "nats://[user:password@]host:port/STREAM?subject=SUBJECT (JetStream)")
    anchor_key: Path | None = Field(None, description="Ed25519 key that signs anchored heads, outside the data "
                                    "directory and never in a backup (default: anchor.key in the user's config "
                                    "directory)")
    anchor_credentials: Path | None = Field(None, description="NATS credentials file (.creds) for the anchor")
    anchor_every_seconds: float = Field(300.0, description="republish the head this often (0 = only on writes)")
    anchor_timeout_seconds: float = Field(5.0, description="longest wait for the anchor on one write")


class ClusterSettings(BaseModel):
    """The sharded gallery (docs/cluster.md, "Sharded gallery"): which galleries the API server
    (``vigil serve``) and the CLI (``vigil search``, ``vigil subject delete``) search on their
    ``vigil shard`` processes over NATS instead of in a local index. Every other gallery is
    searched locally. In TOML::

        [cluster]
        nats = ["nats://10.0.0.5:4222", "nats://10.0.0.6:4222"]
        sharded_galleries = { custody = 4 }

    or ``VIGIL_CLUSTER__NATS=nats://10.0.0.5:4222,nats://10.0.0.6:4222`` and
    ``VIGIL_CLUSTER__SHARDED_GALLERIES=custody:4``. Read by :meth:`servers` and
    :meth:`shard_counts`, which say clearly what is wrong with a value."""

    nats: list[str] | str = Field(default_factory=list, description="NATS server URL(s) of the cluster (a "
                                  "cluster's seeds): a list, or one string of comma-separated URLs")
    sharded_galleries: dict[str, Any] | list[Any] | str = Field(
        default_factory=dict, description="galleries searched on their shards: {name = number of shards}, a list "
        "of \"name:N\", or one string \"name:N,other:M\"; N must be the N every 'vigil shard --shard I/N' of that "
        "gallery serves")
    credentials: Path | None = Field(None, description="NATS credentials file (.creds) for the connection")
    timeout_seconds: float = Field(5.0, description="wait this long for a shard's answer before asking every "
                                   "replica of it once more; a shard silent twice fails the search "
                                   "('gallery incomplete'), never a partial answer")
    erase_timeout_seconds: float = Field(15.0, description="an erasure waits this long for every live replica "
                                         "of every shard to confirm")

    def servers(self) -> list[str]:
        """The NATS URLs, whichever way they were written."""
        raw = self.nats.split(",") if isinstance(self.nats, str) else self.nats
        urls = [str(u).strip() for u in raw if str(u).strip()]
        for url in urls:
            if "://" not in url:
                raise VigilError(f"cluster.nats: {url!r} is not a URL; write nats://HOST:PORT")
        return urls

    def shard_counts(self) -> dict[str, int]:
        """{gallery name: number of shards}; a clear error for a malformed entry."""
        value = self.sharded_galleries
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            pairs = []
            for entry in value:
                name, sep, count = str(entry).strip().rpartition(":")
                if not sep or not name.strip():
                    raise VigilError(f"cluster.sharded_galleries: {entry!r}: write GALLERY:N, for example custody:4")
                pairs.append((name.strip(), count.strip()))
        else:
            pairs = [(str(k).strip(), v) for k, v in value.items()]
        counts: dict[str, int] = {}
        for name, count in pairs:
            n = int(count) if not isinstance(count, bool) and str(count).strip().isdigit() else 0
            if not 1 <= n <= 4096:
                raise VigilError(f"cluster.sharded_galleries: gallery {name!r}: the number of shards must be a "
                                 f"whole number from 1 to 4096, not {count!r}")
            if name in counts and counts[name] != n:
                raise VigilError(f"cluster.sharded_galleries: gallery {name!r} is given {counts[name]} and {n} shards")
            counts[name] = n
        return counts


class RetentionSettings(BaseModel):
    false_alert_hours: float = 24.0
    confirmed_alert_days: float = 31.0
    unverified_alert_days: float = 7.0
    undecided_alert_days: float = 31.0
    search_probe_days: float = 31.0
    snapshot_delete_on_end: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None
    key: str | None = Field(None, description="base64 data key; overrides the key file")
    audit_key: str | None = Field(None, description="base64 audit HMAC key; overrides the key file")
    token: str | None = None
    audit_head_path: Path | None = Field(None, description="where the audit chain head is kept (default under home)")
    server_url: str | None = Field(None, description="a remote Vigil server the CLI talks to (needs VIGIL_TOKEN)")
    engine: EngineSettings = EngineSettings()
    custom_pack: CustomPackSettings = CustomPackSettings()
    quality: QualitySettings = QualitySettings()
    retention: RetentionSettings = RetentionSettings()
    audit: AuditSettings = AuditSettings()
    live: LiveSettings = LiveSettings()
    cluster: ClusterSettings = ClusterSettings()
    # Index: galleries up to this size are searched exactly; larger ones use the ANN index.
    exact_search_limit: int = 200_000
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    token_minutes: int = 30
    login_max_failures: int = 5
    login_lockout_seconds: int = 300
    login_max_failures_per_address: int = 20  # failed logins from one client address (any usernames)
    login_audit_per_address_per_minute: int = Field(10, description="failed or refused logins from one client "
                                                    "address audited one by one in a minute; the rest of the "
                                                    "minute's are counted in one auth.login_failures_summarised entry")
    trusted_origins: list[str] = Field(default_factory=list, description="origins besides the server's own from "
                                       "which the console's session cookie may change state (e.g. the public "
                                       "https://host of a proxy that rewrites Host)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("VIGIL_CONFIG") or str(default_home() / "vigil.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
            file_secret_settings,
        )

    # Paths under the data directory -------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def head_path(self) -> Path:
        return self.audit_head_path or self.home / "audit" / "head.json"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'vigil.db'}"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to print or audit: secrets are masked."""
        data = self.model_dump(mode="json")
        for secret in ("key", "audit_key", "token"):
            if data.get(secret):
                data[secret] = "***"
        if data.get("database_url") and "@" in data["database_url"]:
            scheme, rest = data["database_url"].split("://", 1)
            data["database_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        anchor = (data.get("audit") or {}).get("anchor") or ""
        if "://" in anchor and "@" in anchor.split("://", 1)[1].split("/", 1)[0]:
            scheme, rest = anchor.split("://", 1)
            data["audit"]["anchor"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        cluster = data.get("cluster") or {}
        if cluster.get("nats"):
            urls = cluster["nats"].split(",") if isinstance(cluster["nats"], str) else cluster["nats"]
            cluster["nats"] = [f"{u.split('://', 1)[0]}://***@{u.split('@', 1)[1]}"
                               if "://" in u and "@" in u.split("://", 1)[1].split("/", 1)[0] else u
                               for u in (str(x).strip() for x in urls)]
        return data


@lru_cache(maxsize=8)
def _cached(home: str | None, env_key: tuple[tuple[str, str], ...]) -> Settings:
    try:
        return Settings()
    except ValidationError as exc:  # a user's mistake in the environment or vigil.toml: say which
        problems = []
        for err in exc.errors()[:5]:
            name = ".".join(str(part) for part in err.get("loc", ()))
            variable = "VIGIL_" + "__".join(str(part) for part in err.get("loc", ())).upper()
            problems.append(f"{name} ({variable} or vigil.toml): {err.get('msg', 'invalid')}")
        raise VigilError("invalid setting: " + "; ".join(problems)) from None


def get_settings() -> Settings:
    """Settings for the current environment (cached per distinct VIGIL_* environment)."""
    env_key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("VIGIL_")))
    return _cached(os.environ.get("VIGIL_HOME"), env_key)
