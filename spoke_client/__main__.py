"""spoke-client: with no subcommand, the desktop app; otherwise a command-line task."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from spoke_client import __version__
from spoke_client.i18n import _, set_language
from spoke_client.paths import resolve

log = logging.getLogger("spoke_client")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spoke-client", description=_("Spoke: offline-first telemedicine spoke client."))
    p.add_argument("--data-dir", help=_("folder for the database and files (default: the per-user data folder)"))
    p.add_argument("--language", help=_("language of the interface, e.g. en or hi"))
    p.add_argument("--user", help=_("the user who opens the encrypted data for a task (default: SPOKE_USER); the "
                                    "password is asked, or read from SPOKE_PASSWORD"))
    p.add_argument("--version", action="version", version=f"spoke-client {__version__}")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("setup", help=_("create the facility and its first administrator without the GUI"))
    s.add_argument("--facility-name", required=True)
    s.add_argument("--hwc-id", required=True)
    s.add_argument("--district", required=True)
    s.add_argument("--state", required=True)
    s.add_argument("--admin-user", required=True)
    s.add_argument("--admin-name", required=True)
    s.add_argument("--password-stdin", action="store_true", help=_("read the password from standard input"))

    s = sub.add_parser("seed-demo", help=_("fill the database with synthetic patients and cases"))
    s.add_argument("--patients", type=int, default=200)
    s.add_argument("--cases", type=int, default=100)
    s.add_argument("--seed", type=int, default=7)

    sub.add_parser("selfcheck", help=_("check the database, migrations and resources"))
    s = sub.add_parser("devices", help=_("Bluetooth health devices: tools for field technicians"))
    dsub = s.add_subparsers(dest="devices_command", required=True)
    d = dsub.add_parser("decode", help=_("decode a measurement payload and print it as JSON"))
    d.add_argument("--characteristic", required=True, help=_("e.g. 0x2A35 (blood pressure)"))
    d.add_argument("--hex", required=True, help=_("the payload, e.g. \"1E 8A 00 ...\""))
    s = sub.add_parser("probe-memory")   # for bench/bundle_bench.py: memory with the camera preview on
    s.add_argument("--camera", required=True)
    s.add_argument("--seconds", type=float, default=10)

    s = sub.add_parser("export-fhir", help=_("write a case (or all cases) as FHIR R4 Bundles"))
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--case", dest="case_id")
    g.add_argument("--all", action="store_true")
    s.add_argument("--out", required=True, help=_("a file for --case, a folder for --all"))

    s = sub.add_parser("enroll", help=_("enrol this computer with a hub, using a one-time code from the hub"))
    s.add_argument("--hub", required=True, help=_("the hub's address, https://..."))
    s.add_argument("--code", required=True)
    s.add_argument("--name", default=None, help=_("a name for this computer (default: its host name)"))
    s.add_argument("--allow-http", action="store_true", help=_("allow plain http to a hub that is not this computer"))
    s.add_argument("--ca-bundle", default=None,
                   help=_("a PEM file of certificate authorities to trust for this hub (default: the system's)"))

    sp = sub.add_parser("sync", help=_("one sync round with the hub: push what is waiting, pull what is new"))
    sp.add_argument("--check", action="store_true",
                    help=_("also compare with the hub now, and resync in full if they disagree (done every 6 hours anyway)"))

    s = sub.add_parser("print-rx", help=_("print a case's prescription (or write it as a PDF file)"))
    s.add_argument("--case", dest="case_id", required=True)
    s.add_argument("--prescription", default=None, help=_("which prescription of the case (default: its newest)"))
    s.add_argument("--pdf", default=None, help=_("write the PDF to this file instead of printing it"))
    s.add_argument("--lang", default=None, help=_("the patient's language for the paper: hi, en... (default: the setting)"))
    s.add_argument("--size", default=None, choices=["A5", "A4"], help=_("paper size (default: the setting, A5)"))
    s.add_argument("--printer", default=None, help=_("printer name (default: the one chosen in the settings)"))
    s.add_argument("--wait", type=float, default=30,
                   help=_("seconds to wait for the printer before reporting the job as waiting (default 30)"))

    s = sub.add_parser("verify-rx", help=_("check a printed prescription's QR code, from its PDF or a photo of it"))
    s.add_argument("file", help=_("a PDF, or a photo (JPEG, PNG) of the paper"))
    s.add_argument("--key", action="append", default=[],
                   help=_("a hub's public key (base64) to trust besides the one this computer knows"))

    s = sub.add_parser("bundle", help=_("USB drive bundles: this computer's unsent work, sealed for the hub"))
    bsub = s.add_subparsers(dest="bundle_command", required=True)
    b = bsub.add_parser("export", help=_("write every change and file the hub has not acknowledged to a bundle"))
    b.add_argument("--out", required=True, help=_("a folder on the drive, or the bundle's file name"))
    b.add_argument("--max-size", default=None,
                   help=_("split into parts of at most this size, e.g. 700M or 4G (parts may travel on different days)"))
    b.add_argument("--carry", action="store_true",
                   help=_("copy the parts that waited on this computer (a drive was too small) to this drive"))
    b = bsub.add_parser("import", help=_("import a return bundle from the hub (give any one of its parts)"))
    b.add_argument("file")

    s = sub.add_parser("recover", help=_("every password lost: open the data with the recovery key and give an "
                                         "administrator a new password"))
    s.add_argument("--admin", required=True, help=_("the administrator's user name"))
    s.add_argument("--stdin", action="store_true", help=_("read the recovery key, then the new password, from standard "
                                                           "input (one per line)"))
    s = sub.add_parser("restore-good-copy", help=_("replace a damaged database by its last good copy"))
    s.add_argument("--yes", action="store_true", help=_("do it without asking"))
    s = sub.add_parser("unseal-damaged", help=_("list what was set aside as damaged (kept sealed), or write one "
                                                "file of it back in clear for a technician (administrators)"))
    s.add_argument("name", nargs="?", help=_("the file's name, as listed"))
    s.add_argument("--out", help=_("the new file to write it to"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_language(args.language or os.environ.get("SPOKE_LANGUAGE"))
    paths = resolve(args.data_dir)
    from sync.logsetup import configure

    configure(paths.logs, "spoke.log")
    log.info("spoke-client %s: %s", __version__, args.command or "app")
    if args.command is None:
        from spoke_client.app import run_app  # Qt only when the app is wanted

        return run_app(paths)
    if args.command == "probe-memory":
        from spoke_client.app import run_memory_probe

        return run_memory_probe(paths, args.camera, args.seconds)
    from spoke_client import cli

    try:
        return getattr(cli, "cmd_" + args.command.replace("-", "_"))(paths, args)
    except KeyboardInterrupt:
        return cli.EXIT_FAILED
    except Exception:  # noqa: BLE001 - the last resort: a sentence on the terminal, the details in the log
        log.exception("spoke-client %s failed", args.command)
        print(_("Spoke could not finish '{command}' because of an unexpected error; nothing half-done was kept. "
                "The details are in {log} for the technician.").format(command=args.command, log=paths.logs / "spoke.log"),
              file=sys.stderr)
        return cli.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
