"""spoke-hub: run the reference hub and administer its facilities and devices."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import platformdirs


def default_db_url() -> str:
    folder = Path(platformdirs.user_data_dir("SpokeHub", "Spoke"))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'hub.sqlite'}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="spoke-hub", description="The Spoke reference hub.")
    p.add_argument("--log-dir", default=os.environ.get("SPOKE_HUB_LOG_DIR") or None,
                   help="where hub.log is kept (default: the hub's data folder)")
    p.add_argument("--db", default=os.environ.get("SPOKE_HUB_DB") or None,
                   help="database URL (default: a SQLite file in the hub's data folder; "
                        "postgresql+psycopg://user@host/db in production)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the hub API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8470)
    s.add_argument("--workers", type=int, default=1,
                   help="worker processes (each a Python interpreter: use about one per core on a busy hub)")
    s.add_argument("--stun", action="append", default=[], metavar="URL",
                   help="a STUN server handed to both ends of each call, e.g. stun:stun.example.org:3478 (repeatable)")
    s.add_argument("--turn", action="append", default=[], metavar="URL",
                   help="a TURN server for calls, e.g. turn:turn.example.org:3478?transport=udp (repeatable); each call "
                        "gets credentials for a few hours made with the server's shared secret")
    s.add_argument("--turn-secret-file", default=os.environ.get("SPOKE_HUB_TURN_SECRET_FILE") or None,
                   help="a file holding the TURN server's static-auth-secret (coturn's use-auth-secret)")
    s.add_argument("--media-dir", default=os.environ.get("SPOKE_HUB_MEDIA_DIR") or None,
                   help="where uploaded files are kept (default: next to a SQLite database, else the data folder)")
    s = sub.add_parser("create-facility", help="register a health-and-wellness centre; prints its id")
    s.add_argument("--name", required=True)
    s.add_argument("--hwc-id", required=True)
    s = sub.add_parser("enroll-code", help="a one-time code for enrolling one spoke PC of a facility")
    s.add_argument("--facility", required=True)
    s = sub.add_parser("create-hub", help="a hub (a district hospital, a medical college); prints its id")
    s.add_argument("--name", required=True)
    s.add_argument("--kind", default="", help="e.g. 'district hospital'")
    s = sub.add_parser("create-admin", help="the first administrator of a hub (reads the password from stdin)")
    s.add_argument("--hub", required=True, help="the hub's id (create-hub prints it)")
    s.add_argument("--username", required=True)
    s.add_argument("--name", required=True, help="the person's full name")
    s.add_argument("--if-missing", action="store_true", help="do nothing when the user name already exists")
    s = sub.add_parser("add-doctor", help="a doctor of a hub (reads the password from stdin; administrators also "
                                          "add doctors in the console)")
    s.add_argument("--hub", required=True, help="the hub's id (create-hub prints it)")
    s.add_argument("--username", required=True)
    s.add_argument("--name", required=True, help="the doctor's full name as it is printed on a prescription")
    s.add_argument("--qualification", required=True, help="e.g. 'MBBS, MD (Medicine)'")
    s.add_argument("--registration-number", required=True, help="the medical registration number")
    s.add_argument("--council", default="", help="the council that registered the doctor")
    s.add_argument("--speciality", action="append", default=[], help="one of the hub's specialities (repeatable)")
    s.add_argument("--if-missing", action="store_true", help="do nothing when the user name already exists")
    s = sub.add_parser("assign", help="the hub that serves a facility (its cases go to that hub's queue)")
    s.add_argument("--facility", required=True)
    s.add_argument("--hub", required=True)
    s = sub.add_parser("revoke", help="revoke a device")
    s.add_argument("--device", required=True)
    s.add_argument("--reason", default="")
    s = sub.add_parser("bundle", help="USB bundles: import a spoke's bundle")
    bsub = s.add_subparsers(dest="bundle_command", required=True)
    b = bsub.add_parser("import", help="verify and apply a spoke's bundle (give any one of its parts)")
    b.add_argument("file")
    b.add_argument("--media-dir", default=os.environ.get("SPOKE_HUB_MEDIA_DIR") or None,
                   help="where the hub keeps files (as for serve)")
    b = bsub.add_parser("upload", help="relay a spoke's bundle to its hub from any PC with a network (resumes a cut "
                                       "link; this PC cannot read the bundle)")
    b.add_argument("file", help="the bundle (its other parts beside it are sent too)")
    b.add_argument("--hub", required=True, help="the hub's address, https://...")
    b.add_argument("--allow-http", action="store_true", help="allow plain http to a hub that is not this computer")
    b.add_argument("--ca-bundle", default=None, help="a PEM file of certificate authorities to trust for this hub")
    b = bsub.add_parser("export", help="a return bundle for one spoke PC: what it has not seen yet")
    b.add_argument("--device", required=True, help="the PC's device id")
    b.add_argument("--out", required=True, help="a folder on the drive, or the bundle's file name")
    b.add_argument("--max-size", default=None, help="split into parts of at most this size, e.g. 700M or 4G")
    b.add_argument("--media-dir", default=os.environ.get("SPOKE_HUB_MEDIA_DIR") or None,
                   help="where the hub keeps files (as for serve)")
    bsub.add_parser("keys", help="the hub's bundle keys: the current one, the older ones, the retired ones")
    bsub.add_parser("rotate-key", help="a new bundle key; the older ones still open bundles already sealed for "
                                       "them (the PCs learn the new one at their next network sync)")
    b = bsub.add_parser("retire-key", help="destroy an older bundle key: bundles sealed for it are refused from "
                                           "now on")
    b.add_argument("key_id")
    args = p.parse_args(argv)

    if args.command == "bundle" and args.bundle_command == "upload":
        return _relay(args)   # a relay PC has no hub database: nothing of it is opened or made

    from sync.hub.service import Hub, HubError, make_hub_engine
    from sync.logsetup import configure

    log_dir = Path(args.log_dir) if args.log_dir else Path(platformdirs.user_data_dir("SpokeHub", "Spoke")) / "logs"
    configure(log_dir, "hub.log", stderr=args.command == "serve")
    if args.log_dir:
        os.environ["SPOKE_HUB_LOG_DIR"] = args.log_dir   # the workers of --workers N log there too

    db = args.db or default_db_url()
    hub = Hub(make_hub_engine(db), media_dir=getattr(args, "media_dir", None))
    hub.create_schema()
    try:
        if args.command == "serve":
            import uvicorn

            from sync.hub.app import create_app
            from sync.hub.calls import IceConfig

            # Calls' ICE servers, for this process and its workers (never a TURN password: only its secret's file).
            if args.stun:
                os.environ["SPOKE_HUB_STUN"] = " ".join(args.stun)
            if args.turn:
                os.environ["SPOKE_HUB_TURN"] = " ".join(args.turn)
            if args.turn_secret_file:
                os.environ["SPOKE_HUB_TURN_SECRET_FILE"] = args.turn_secret_file
            hub.ice = IceConfig.from_env()
            if hub.ice.turn and not hub.ice.secret:
                raise SystemExit("spoke-hub: --turn needs --turn-secret-file (the TURN server's shared secret)")
            if args.workers > 1:
                # Each worker builds its own app from the environment (uvicorn imports it by name).
                hub.engine.dispose()
                os.environ["SPOKE_HUB_DB"] = db
                os.environ["SPOKE_HUB_MEDIA_DIR"] = str(hub.media_dir)
                uvicorn.run("sync.hub.app:app_from_env", factory=True, host=args.host, port=args.port,
                            workers=args.workers, log_level="info")
            else:
                uvicorn.run(create_app(hub, os.environ.get("SPOKE_HUB_ADMIN_TOKEN")), host=args.host, port=args.port,
                            log_level="info")
        elif args.command == "create-facility":
            print(hub.create_facility(args.name, args.hwc_id))
        elif args.command == "enroll-code":
            print(hub.enroll_code(args.facility))
        elif args.command == "create-hub":
            print(hub.create_hub(args.name, args.kind))
        elif args.command == "create-admin":
            _add_person(hub, args, "admin")
        elif args.command == "add-doctor":
            _add_person(hub, args, "doctor", qualification=args.qualification,
                        registration_number=args.registration_number, council=args.council,
                        specialities=tuple(args.speciality))
        elif args.command == "assign":
            hub.assign_facility(None, args.facility, args.hub)
            print(f"{args.facility} is served by {args.hub}")
        elif args.command == "bundle":
            return _bundle(hub, args)
        elif args.command == "revoke":
            hub.revoke(args.device, args.reason)
            print(f"revoked {args.device}")
    except HubError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    return 0


def _relay(args) -> int:
    from sync.bundle import BundleError
    from sync.bundle_relay import RelayFailed, relay

    def shown(done: int, total: int) -> None:
        print(f"\r{done * 100 // max(total, 1):3d}% of {total / 2**20:.1f} MB", end="", file=sys.stderr, flush=True)

    try:
        report = relay(Path(args.file), args.hub, allow_plain_http=args.allow_http, ca_bundle=args.ca_bundle,
                       progress=shown if sys.stderr.isatty() else None)
    except BundleError as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    except RelayFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    except ValueError as exc:   # an address that is not https
        print(exc, file=sys.stderr)
        return 2
    parts = ", ".join(map(str, report.parts_sent))
    print(f"Sent part(s) {parts} ({report.bytes_sent / 2**20:.1f} MB this time).")
    if report.outcome:
        print(f"The hub says: {report.outcome}")
    elif report.waiting:
        print("The hub now waits for part(s) " + ", ".join(map(str, report.waiting)) + " of this bundle.")
    return 0


def _bundle(hub, args) -> int:
    from sync.bundle import SUFFIX, BundleError, parse_size

    if args.bundle_command in ("keys", "rotate-key", "retire-key"):
        return _bundle_keys(hub, args)
    try:
        if args.bundle_command == "import":
            report = hub.import_bundle(Path(args.file))
        else:
            try:
                max_size = parse_size(args.max_size) if args.max_size else None
            except ValueError as exc:
                print(exc, file=sys.stderr)
                return 2
            out = Path(args.out)
            if out.is_dir():
                out = out / f"return-{args.device[:8]}{SUFFIX}"
            report = hub.export_return_bundle(args.device, out, max_size)
            for path in report.paths:
                print(path)
    except BundleError as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    print(report.sentence())
    return 0


def _bundle_keys(hub, args) -> int:
    from sync.hub.service import HubError

    try:
        if args.bundle_command == "rotate-key":
            print(f"{hub.rotate_box_key()} is the hub's bundle key now; the older ones still open what was sealed "
                  "for them until retired.")
            return 0
        if args.bundle_command == "retire-key":
            hub.retire_box_key(args.key_id)
            print(f"{args.key_id} retired: bundles sealed for it are refused from now on.")
            return 0
    except HubError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    current, _key = hub.box_key()
    for key_id, retired in sorted(hub.box_key_ids().items(), key=lambda kv: kv[0] != current):
        print(f"{key_id}  " + ("current" if key_id == current else
                               f"retired {retired:%d %b %Y}" if retired else "older (still opens its bundles)"))
    return 0


def _add_person(hub, args, role: str, **details) -> None:
    """An administrator or a doctor, with the password read from stdin; prints the new id (with --if-missing, a
    user name already there is said and left as it is)."""
    from sync.hub.service import HubError

    password = sys.stdin.readline().rstrip("\n")
    try:
        staff = hub.add_staff(None, args.hub, args.username, args.name, password, role, **details)
    except HubError as exc:
        if not (args.if_missing and exc.code == "taken"):
            raise
        print(f"{args.username} is already a user of this hub")
    else:
        print(staff.id)


if __name__ == "__main__":
    sys.exit(main())
