"""What a user's or token's name, role and cameras may be: one rule each for the CLI, the API and the store."""

from __future__ import annotations

import re

from maskwatch.site.config import CAMERA_ID

ROLES = ("admin", "viewer")
SCOPES = ("read", "full")
USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # whole (fullmatch): "$" let "dan\n" in, then no "dan"
# ASCII: "letters" in the rule's words read as 田中 and müller allowed, and the rule refused them.
# A token's name is logged as "token:NAME" in the access log's 64 characters (PostgreSQL refused a
# longer one, and the request with it).
TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,58}")
# Names the characters' rule lets through but no URL can address: a browser and httpx read
# /v1/users/.. (and %2E%2E) as /v1/, so a user or token of that name could not be removed,
# reset or revoked from the dashboard.
DOT_NAMES = (".", "..")
# A name starting with "-" passed the rule too, but the commands read it as an option: `maskwatch
# users remove -x` said "No such option: -x". Refused for new names; an old one is named after `--`.
CAMERAS_TEXT = 2000  # users.cameras: the viewer's camera ids, comma-separated (PostgreSQL refused a longer list)
# edit_user's `cameras` when the cameras stay as they are (None there means every camera).
UNCHANGED = object()
# What `users edit` and PATCH /v1/users/NAME call the role, the cameras and every camera (edit_problem);
# `users add` and POST /v1/users name the cameras so too (new_user_problem, viewer_cameras).
CLI_EDIT = ("--role", "--camera", "--all-cameras")
API_EDIT = ("role", "cameras", "all_cameras")
NO_CAMERA = "{} names no camera: use {} for every camera"  # an empty list: not "all"


def cameras_text(cameras) -> str | None:
    """A viewer's cameras as users.cameras keeps them: comma-separated, blanks and repeats dropped; None: every camera."""
    if cameras is None:
        return None
    cameras = [c.strip() for c in cameras if c.strip()]
    return ",".join(dict.fromkeys(cameras))


def name_rule(kind: str) -> str:
    """The name rule of a user (`kind` "user") or token ("token"), in words."""
    longest = 64 if kind == "user" else 58
    return (f"{kind} names are 1-{longest} of A-Z, a-z, 0-9, _ . @ or - (no accents or other scripts), not starting "
            "with -, and not . or ..")


def name_problem(name: str, kind: str) -> str | None:
    """What is wrong with a new user's (`kind` "user") or token's ("token") name: the one rule of
    the CLI, the API and the store."""
    pattern = USER_NAME if kind == "user" else TOKEN_NAME
    if not pattern.fullmatch(name) or name in DOT_NAMES or name.startswith("-"):
        return f"{name_rule(kind)}; got {name!r}"
    return None


def no_such(name: str, kind: str = "user") -> str:
    """The refusal of a user or token `name` that is none, with the name rule where the name breaks
    it: "no user 'a\\x00b'" read as a user missing, not as a name nobody can have (a NUL, a
    control character). Said only of a name looked up and not found: a name older than the
    rule (one starting with -) is still found."""
    said = f"no {kind} {name!r}"
    return said if name_problem(name, kind) is None else f"{said}: {name_rule(kind)}"


def new_user_problem(name: str, role: str, cameras: list[str] | None, cameras_name: str = CLI_EDIT[1]) -> str | None:
    """What is wrong with a user to add, before any password (a bad name, role or camera list);
    `cameras_name` as the asker calls the list (API_EDIT[1] for POST /v1/users: a JSON client read
    "--camera")."""
    if (problem := name_problem(name, "user")) is not None:
        return problem
    return access_problem(role, cameras, cameras_name)


def edit_problem(role: str | None, cameras: list[str] | None, all_cameras: bool,
                 names: tuple[str, str, str]) -> str | None:
    """What is wrong with a change of a user's role or cameras, before anything is read: one rule
    for `users edit` and PATCH /v1/users/NAME (each kept its own copy), said in the `names` of the
    one asked (CLI_EDIT, API_EDIT: its role, cameras and every-camera options)."""
    role_name, cameras_name, all_name = names
    if cameras is not None and all_cameras:
        return f"give {cameras_name} or {all_name}, not both"
    if role is None and cameras is None and not all_cameras:
        return f"nothing to change: give {role_name}, {cameras_name} or {all_name}"
    if cameras is not None and not any(c.strip() for c in cameras):  # "leave it out", as `add` says, keeps them
        return NO_CAMERA.format(cameras_name, all_name)
    return access_problem(role or "viewer", cameras, cameras_name)


def access_problem(role: str, cameras: list[str] | None, cameras_name: str = CLI_EDIT[1]) -> str | None:
    """What is wrong with a role and a viewer's cameras: a user's to add (new_user_problem) or to
    change (edit_user, edit_problem), one rule; `cameras_name` as the asker calls the list."""
    if role not in ROLES:
        return f"role must be one of {', '.join(ROLES)}; got {role!r}"
    if role == "admin" and cameras:
        return f"an admin sees every camera: a camera list ({cameras_name}) is for viewers"
    # Checked where no site's list is (`serve`, `users add --database`): "door,till" was stored as
    # is and read back as two cameras, door and till; markup was kept for any page to show.
    if cameras and (odd := [c.strip() for c in cameras if c.strip() and not CAMERA_ID.fullmatch(c.strip())]):
        return f"camera ids are 1-64 letters, digits, _ or -; got {odd[0]!r}"
    if cameras and len(cameras_text(cameras) or "") > CAMERAS_TEXT:
        return f"a viewer's cameras take at most {CAMERAS_TEXT} characters together; leave the list out for all cameras"
    return None


def token_access_problem(scope: str, cameras: list[str] | None, cameras_name: str = CLI_EDIT[1]) -> str | None:
    """What is wrong with a token's scope and cameras: a `read` token may have a viewer's list
    (access_problem's rules and words); a `full` one acts as an admin, who sees every camera."""
    if scope not in SCOPES:
        return f"scope must be one of {', '.join(SCOPES)}; got {scope!r}"
    if cameras is not None and not any(c.strip() for c in cameras):  # read back as no camera at all
        return f"{cameras_name} names no camera: leave it out for all cameras"
    if scope == "full" and cameras:
        return f"a full token acts as an admin, who sees every camera: a camera list ({cameras_name}) is for read tokens"
    return access_problem("viewer", cameras, cameras_name)


def viewer_cameras(cameras: list[str] | None, configured: list[str] | None, with_history, where: str,
                   cameras_name: str) -> list[str] | None:
    """A viewer's cameras as stored: blanks and repeats dropped, None for every camera. ValueError names a
    camera neither in `configured` (the site's; None: no site to check against) nor among
    `with_history(unknown)`, those of them whose history the database still holds (a camera
    removed from the file is read as long as its history is kept), or a list of blanks, said as
    the asker calls the list (`cameras_name`: CLI_EDIT[1], API_EDIT[1]). `users add`/`edit` and
    POST/PATCH /v1/users; a read token's (`tokens add --camera`, POST /v1/tokens) alike."""
    if cameras is None:
        return None
    # Repeats dropped as stored: `--camera door --camera door` made a token "door, door only", and
    # POST /v1/tokens answered and logged ["door", "door"], where the database kept "door".
    cameras = list(dict.fromkeys(c.strip() for c in cameras if c.strip()))
    if not cameras:
        raise ValueError(f"{cameras_name} names no camera: leave it out for all cameras")
    if configured is not None and (unknown := [c for c in cameras if c not in configured]):
        if unknown := [c for c in unknown if c not in with_history(unknown)]:
            raise ValueError(f"no camera {', '.join(map(repr, unknown))} in {where}, nor any history of it in its "
                             f"database; cameras: {', '.join(configured)}")
    return cameras


def changed_meanwhile(user: dict, expected: dict | None) -> str | None:
    """Why an edit made on `expected` (the user's role and cameras as its caller read them, GET
    /v1/users) is not written over `user` as they are now: another admin's change meanwhile, which
    it silently undid; None where they agree or nothing is expected."""
    if expected is None or (expected["role"], expected["cameras"]) == (user["role"], user["cameras"]):
        return None
    seen = ", ".join(user["cameras"]) if user["cameras"] is not None else "all cameras"
    return (f"{user['name']!r} was changed meanwhile (now {user['role']} of {seen}): nothing changed; "
            "look at them again and redo the change")
