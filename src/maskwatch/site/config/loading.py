"""A SiteConfig, or a part, made from what a user gives: the file, the zone editor's text, serve --source."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from maskwatch.site.config.cameras import CAMERA_ID, OWN_SETTINGS, CameraConfig, CameraSettings, _is_relative_file
from maskwatch.site.config.environment import _substitute_env
from maskwatch.site.config.problems import SiteConfigError, _describe, _missing_files
from maskwatch.site.config.section import without_blanks
from maskwatch.site.config.server import ServerConfig, StorageConfig
from maskwatch.site.config.site import SiteConfig, _raw_references, reference_problems
from maskwatch.site.config.yaml_text import _read_yaml, _yaml_document

DRAWN_SETTINGS = ("zones", "motion")  # what the dashboard's zone editor draws of a camera


def camera_with_shapes(camera_id: str, camera: CameraConfig, text: str) -> CameraConfig:
    """`camera` with the `zones:` and `motion:` of `text`, the YAML the dashboard's zone editor gives
    to paste under the camera in site.yaml, read and validated as load_site_config reads a camera (the
    editor drew from a reader of its own, which could disagree with this one). SiteConfigError with
    `run --check`'s lines, its path the camera; nothing is written.

    No ${VAR} is substituted: the answer would show a viewer the server's environment."""
    raw = _yaml_document(text, f"camera {camera_id!r}")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SiteConfigError(f"camera {camera_id!r}", [f"camera {camera_id!r}: expected its settings zones: and "
                                                        "motion:, as under the camera in site.yaml"])
    undrawn = [key for key in raw if key not in DRAWN_SETTINGS and key in CameraConfig.model_fields]
    # The text's settings on a camera of their own (a source that is always valid and reads nothing):
    # zones' and motion's checks are their fields' own, and the source given in the text, were it
    # read, would tell a viewer which files the server has.
    drawn = {key: value for key, value in without_blanks(raw, CameraConfig).items() if key not in undrawn}
    try:
        checked = CameraConfig.model_validate({**drawn, "source": "webcam:0"})
    except ValidationError as err:
        raise SiteConfigError(f"camera {camera_id!r}", _describe(err, ("cameras", camera_id))) from None
    if undrawn:
        raise SiteConfigError(f"camera {camera_id!r}", [
            f"camera {camera_id!r}, field {key!r}: the zone editor's text holds zones: and motion: only; set "
            f"{key} in site.yaml" for key in undrawn])
    # `motion:` counts as given as the text gives it (model_copy's update would count it always): the
    # editor writes back a `motion: {masks: []}` it was given, which replaces the defaults' motion
    given = (camera.model_fields_set - set(DRAWN_SETTINGS)) | (checked.model_fields_set & set(DRAWN_SETTINGS))
    return CameraConfig.model_construct(given, **{**dict(camera), **{key: getattr(checked, key) for key in DRAWN_SETTINGS}})


def _storage_beside(storage: dict, path: Path) -> None:
    """A database or snapshots path not given is the default's; relative ones are beside the file."""
    for key in ("database", "snapshots"):
        value = storage.setdefault(key, StorageConfig.model_fields[key].default)
        if isinstance(value, str) and "://" not in value and not Path(value).is_absolute():
            storage[key] = str(path.parent / value)


def _storage_places(storage: dict) -> list[str]:
    """Paths a site could not use, said by --check too (a snapshots path that is a file failed only
    at the start, after the database was made): a database that is a folder, snapshots a file."""
    problems = []
    database, snapshots = storage.get("database"), storage.get("snapshots")
    if isinstance(database, str) and "://" not in database and Path(database).is_dir():
        problems.append(f"field 'storage.database': {database} is a folder; name the database file in it "
                        "(maskwatch.db)")
    if isinstance(snapshots, str) and Path(snapshots).exists() and not Path(snapshots).is_dir():
        problems.append(f"field 'storage.snapshots': {snapshots} is a file, not a folder; name a folder")
    return problems


@dataclass(frozen=True)
class SiteUsersView:
    """What the users and tokens commands read of a site's file: its storage, its cameras' ids and
    server.require_two_step (what `users 2fa --off` leaves a covered user to do)."""

    storage: StorageConfig
    cameras: tuple[str, ...]
    require_two_step: str = "none"


def load_site_users_view(path: Path | str, environ: dict[str, str] | None = None) -> SiteUsersView:
    """The file's storage (its ${VAR}s set and checked) and camera ids, the rest unread: managing
    users must not need the cameras', webhooks' or broker's secrets in the environment (it did)."""
    path = Path(path)
    raw = _read_yaml(path)
    problems: list[str] = []
    storage = _substitute_env(raw.get("storage") or {}, os.environ if environ is None else environ,
                              ("storage",), problems)
    cameras = raw.get("cameras")
    if not isinstance(cameras, dict) or not cameras:
        problems.append("cameras: list the cameras under 'cameras:', keyed by id")
        cameras = {}
    if not isinstance(storage, dict):
        problems.append("storage: expected a mapping")
    elif not problems:
        _storage_beside(storage, path)
        try:
            stored = StorageConfig(**storage)
        except ValidationError as err:
            problems.extend(_describe(err, ("storage",)))
        server = raw.get("server") if isinstance(raw.get("server"), dict) else {}
        # This one setting, its ${VAR} set and checked as the whole file's check would: the rest
        # of server: is left unread (a `${VAR}` here made every users command refuse the file).
        setting = _substitute_env({"require_two_step": server.get("require_two_step", "none")},
                                  os.environ if environ is None else environ, ("server",), problems)
        try:
            rule = ServerConfig(**setting).require_two_step
        except ValidationError as err:
            problems.extend(_describe(err, ("server",)))
        if not problems:
            return SiteUsersView(stored, tuple(str(c) for c in cameras), rule)
    raise SiteConfigError(path, problems)


def load_site_config(path: Path | str, environ: dict[str, str] | None = None, *, files: bool = True) -> SiteConfig:
    """Read, substitute ${ENV_VAR}s, merge defaults into each camera and validate the whole file.

    Relative file paths (video sources, database, snapshots, models) are relative to the config's folder.
    files=False: a camera's video file need not exist, for a command that only reads the store or
    the file (`report`: the demo site before `make demo` was refused).
    Raises SiteConfigError listing every problem, each naming the camera and the field.
    """
    path = Path(path)
    environ = os.environ if environ is None else environ
    raw = _read_yaml(path)
    problems: list[str] = []
    raw = _substitute_env(raw, environ, (), problems)
    cameras = raw.get("cameras")
    defaults = raw.pop("defaults", None) or {}
    if not isinstance(defaults, dict):
        problems.append("defaults: expected a mapping of camera settings")
        defaults = {}
    else:
        for key in sorted(OWN_SETTINGS & set(defaults)):  # each camera's own: "unknown setting (a typo?)" misled
            problems.append(f"field 'defaults.{key}': a camera's own setting; set it under each camera")
        defaults = {key: value for key, value in defaults.items() if key not in OWN_SETTINGS}
        try:
            CameraSettings(**defaults)
        except ValidationError as err:
            problems.extend(_describe(err, ("defaults",)))
            defaults = {}  # said once, here, not again for every camera that takes them
    if cameras is None:
        problems.append("cameras: missing; list the cameras under 'cameras:', keyed by id")
    elif not isinstance(cameras, dict):
        problems.append("cameras: expected a mapping of camera id -> settings")
    else:
        merged = {}
        for camera_id, camera in cameras.items():
            if not isinstance(camera_id, str):  # YAML read `true:` as True, `007:` as 7 (and True == 1)
                problems.append(f"camera {camera_id!r}: YAML reads this id as a {type(camera_id).__name__}; "
                                f"write it in quotes ('{camera_id}') or use letters")
                continue
            if not CAMERA_ID.fullmatch(str(camera_id)):
                problems.append(f"camera {camera_id!r}: the id must be 1-64 of A-Z, a-z, 0-9, _ and - (it names "
                                "MQTT topics, URLs and snapshot files); spaces or accents go in its `name:`")
                continue
            if not isinstance(camera, dict):
                problems.append(f"camera {camera_id!r}: expected a mapping of settings, got {type(camera).__name__}")
                continue
            camera = {**defaults, **without_blanks(camera, CameraConfig)}  # a blank list: the defaults'
            for key in ("source", "detect_source"):
                if isinstance(camera.get(key), str) and camera[key] and _is_relative_file(camera[key]):
                    camera[key] = str(path.parent / camera[key])
            merged[str(camera_id)] = camera
        raw["cameras"] = merged
    tls = raw.get("server", {}).get("tls") if isinstance(raw.get("server"), dict) else None
    for section, keys in ((tls, ("cert", "key")), (raw.get("mqtt"), ("ca_file",)),
                          (raw.get("models"), ("classifier", "detector"))):
        for key in keys if isinstance(section, dict) else ():
            if isinstance(section.get(key), str) and not Path(section[key]).is_absolute():
                section[key] = str(path.parent / section[key])
    storage = raw.get("storage")
    if storage is None:
        storage = raw["storage"] = {}
    if isinstance(storage, dict):
        _storage_beside(storage, path)
        problems += _storage_places(storage)
    missing: tuple[Path, ...] = ()
    try:  # validated whatever was found above, so that every problem is said at once
        config = SiteConfig.model_validate(raw, context={"files": files})
    except ValidationError as err:
        missing = _missing_files(err)
        named = {problem.split(":", 1)[0] for problem in problems}  # a ${VAR} left unset is said already
        if any(problem.startswith("camera ") for problem in problems):
            named.add("cameras")  # "at least one camera is needed" once the bad ones were left out
        if any(problem.startswith("cameras: ") for problem in problems):
            named.add("field 'cameras'")  # missing, or not a mapping: said once, not again in pydantic's words
        problems.extend(p for p in _describe(err, ()) if p.split(":", 1)[0] not in named)
        if isinstance(raw.get("cameras"), dict) and raw["cameras"]:  # what the alerts name, checked anyway
            said = set(problems)
            problems.extend(p for p in reference_problems(*_raw_references(raw)) if p not in said)
    else:
        if not problems:
            return config
    raise SiteConfigError(path, problems, missing)


def one_camera_site(source: str, database: str, blur: bool) -> SiteConfig:
    """`serve --source`: a site of one camera, "live", watching `source` at the cameras' defaults.

    Its events go to `database`, beside the service's users; with `blur`, frames are served
    with faces blurred and no snapshot is kept (privacy), otherwise snapshots lie beside it.
    """
    snapshots = Path(database).parent / "snapshots" if "://" not in database else Path("snapshots")
    try:
        return SiteConfig(cameras={"live": CameraConfig(source=source)},
                          storage=StorageConfig(database=database, snapshots=str(snapshots), privacy=blur))
    except ValidationError as err:
        raise SiteConfigError(Path("--source"), _describe(err, ())) from None
