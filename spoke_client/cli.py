"""The command-line tasks: each opens the local store, does one job, prints a result and returns an exit code."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from spoke_client.domain.errors import DatabaseDamaged, SpokeError, ValidationFailed
from spoke_client.i18n import _
from spoke_client.paths import DataPaths
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # the store's modules load once a task's password is derived (vault.Gate.login): less memory
    from spoke_client.services.runtime import Services

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _credentials(args: argparse.Namespace | None, default_user: str | None = None) -> tuple[str, str] | None:
    """Who opens the encrypted data for a command-line task: --user (or SPOKE_USER) and the password from
    SPOKE_PASSWORD, or asked on the terminal. None when neither can be had."""
    user = getattr(args, "user", None) or os.environ.get("SPOKE_USER") or default_user
    if not user:
        return None
    password = os.environ.get("SPOKE_PASSWORD")
    if password is None:
        if default_user is not None and user == default_user and user == DEMO_ADMIN:
            password = DEMO_PASSWORD
        elif sys.stdin.isatty():
            password = getpass.getpass(_("Password of {user}: ").format(user=user))
        else:
            return None
    return user, password


def _needs_a_user():
    from spoke_client.services.vault import DataLocked

    return DataLocked(_("The patient data on this computer is encrypted. Give the user who opens it: "
                        "spoke-client --user NAME ... (the password is asked, or read from SPOKE_PASSWORD)."))


def _locked(paths: DataPaths) -> bool:
    from spoke_client.db.engine import database_kind

    return database_kind(paths.database) == "encrypted" and paths.keyslots.exists()


def _unlocked(paths: DataPaths, args: argparse.Namespace | None, default_user: str | None = None) -> Services:
    """Signs in as the task's user (vault.Gate): the data opens with that user's key slot."""
    from spoke_client.services.vault import Gate

    who = _credentials(args, default_user)
    if who is None:
        raise _needs_a_user()
    gate = Gate(paths)
    gate.login(*who)
    return gate.services


def _key(paths: DataPaths, args: argparse.Namespace | None) -> bytes | None:
    """The key alone (for a task on a database that does not open: its good copies open with the same key)."""
    from spoke_client.services.vault import Gate

    if not _locked(paths):
        return None
    who = _credentials(args)
    if who is None:
        raise _needs_a_user()
    return Gate(paths).unlock_key(*who)


def _open(paths: DataPaths, args: argparse.Namespace | None = None, default_user: str | None = None) -> Services | int:
    try:
        if _locked(paths):
            return _unlocked(paths, args, default_user)
        from spoke_client.services.runtime import open_services

        return open_services(paths)
    except DatabaseDamaged as exc:
        _err(exc.message)
        if getattr(exc, "last_good", None):
            _err(_("To restore it: spoke-client --data-dir {d} restore-good-copy").format(d=paths.root))
        return EXIT_DAMAGED
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED


def _print_recovery_key(services: Services) -> None:
    recovery = services.auth.take_recovery_key()
    if recovery:
        print(_("The data is encrypted. Its recovery key, shown only now (write it down and keep it with the "
                "centre's records; it opens the data when every password is lost):"))
        print("    " + recovery)


def _report_validation(exc: ValidationFailed) -> int:
    for p in exc.problems:
        _err(f"{p.field}: {p.message}")
    return EXIT_USAGE


def cmd_setup(paths: DataPaths, args: argparse.Namespace) -> int:
    from spoke_client.services.auth import FacilityForm

    if _locked(paths):
        _err(_("This computer is already set up; sign in as its administrator."))
        return EXIT_FAILED
    services = _open(paths, args)
    if isinstance(services, int):
        return services
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(_("Administrator password: "))
    try:
        facility, admin = services.auth.setup(
            FacilityForm(args.facility_name, args.hwc_id, args.district, args.state), args.admin_user, args.admin_name, password)
    except ValidationFailed as exc:
        return _report_validation(exc)
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    finally:
        services.close()
    print(_("Set up {facility} ({hwc}); administrator: {user}").format(facility=facility.name, hwc=facility.hwc_id, user=admin.username))
    _print_recovery_key(services)
    return EXIT_OK


DEMO_ADMIN, DEMO_PASSWORD = "admin", "spoke-demo"


def cmd_seed_demo(paths: DataPaths, args: argparse.Namespace) -> int:
    from spoke_client.services.auth import FacilityForm
    from spoke_client.services.seed import seed_demo

    if args.patients < 0 or args.cases < 0:
        _err(_("--patients and --cases take a number of zero or more."))
        return EXIT_USAGE
    services = _open(paths, args, default_user=DEMO_ADMIN)
    if isinstance(services, int):
        return services
    try:
        if services.auth.needs_setup():
            services.auth.setup(FacilityForm("HWC Rampur (demo)", "HWC-DEMO-001", "Sitapur", "Uttar Pradesh"),
                                DEMO_ADMIN, "Demo Administrator", DEMO_PASSWORD)
            print(_("Created a demo facility; sign in as '{u}' with password '{p}'.").format(u=DEMO_ADMIN, p=DEMO_PASSWORD))
            _print_recovery_key(services)
        admin = next(u for u in services.auth.list_users(_system_admin(services)) if u.role.value == "admin")
        facility = services.auth.facility()
        last = [0]

        def progress(done: int, total: int) -> None:
            if done - last[0] >= 50_000 or done == total:
                last[0] = done
                print(_("  {done:,} of {total:,}").format(done=done, total=total), flush=True)

        report = seed_demo(services.store, admin, facility.id, args.patients, args.cases, seed=args.seed, progress=progress)
    finally:
        services.close()
    print(_("Seeded {p:,} patients and {c:,} cases in {s:.1f} s.").format(p=report.patients, c=report.cases, s=report.seconds))
    return EXIT_OK


def _system_admin(services: Services):
    """Command-line tasks run as the machine's operator: act with the first administrator's role."""
    from sqlalchemy import select

    from spoke_client.db.models import UserRow
    from spoke_client.services.auth import _user

    with services.store.read() as s:
        row = s.scalars(select(UserRow).where(UserRow.role == "admin").order_by(UserRow.created_at)).first()
        return _user(row)


def cmd_selfcheck(paths: DataPaths, args: argparse.Namespace) -> int:
    from spoke_client.services.selfcheck import run_selfcheck

    try:
        key = _key(paths, args) if _locked(paths) and _credentials(args) else None
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    report = run_selfcheck(paths, key)
    from spoke_client.ui.qtcheck import qt_checks   # Qt stays in the UI layer

    qt_checks(report)
    for line in report.lines:
        print(line)
    return EXIT_OK if report.ok else EXIT_FAILED



def cmd_export_fhir(paths: DataPaths, args: argparse.Namespace) -> int:
    from spoke_client.services.export import export_all, export_case

    services = _open(paths, args)
    if isinstance(services, int):
        return services
    try:
        out = Path(args.out)
        if args.all:
            n = export_all(services, out)
            print(_("Wrote {n} FHIR Bundles to {out}").format(n=n, out=out))
        else:
            export_case(services, args.case_id, out)
            print(_("Wrote {out}").format(out=out))
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    except OSError as exc:
        _err(_("Could not write {out}: {error}").format(out=args.out, error=exc.strerror or exc))
        return EXIT_FAILED
    finally:
        services.close()
    return EXIT_OK


def cmd_recover(paths: DataPaths, args: argparse.Namespace) -> int:
    from spoke_client.services.vault import Gate

    if not _locked(paths):
        _err(_("The data on this computer is not encrypted, or not set up: there is nothing to recover."))
        return EXIT_FAILED
    if args.stdin:
        recovery, password = sys.stdin.readline().strip(), sys.stdin.readline().rstrip("\n")
    else:
        recovery = input(_("Recovery key: "))
        password = getpass.getpass(_("New password for {user}: ").format(user=args.admin))
    gate = Gate(paths)
    try:
        user = gate.recover(recovery, args.admin, password)
    except ValidationFailed as exc:
        return _report_validation(exc)
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    finally:
        if gate.services is not None:
            gate.services.close()
    print(_("The data is open again: {user} has a new password. The other users keep theirs.").format(user=user.username))
    return EXIT_OK


def cmd_restore_good_copy(paths: DataPaths, args: argparse.Namespace) -> int:
    from spoke_client.services.runtime import last_good_copy, restore_good_copy

    try:
        key = _key(paths, args)
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    copy = last_good_copy(paths, key)
    if copy is None:
        _err(_("No good copy of the database was found in {d}.").format(d=paths.backups))
        return EXIT_FAILED
    if not args.yes:
        answer = input(_("Replace the database by the copy {copy}? The current file is kept aside. [y/N] ").format(copy=copy.name))
        if answer.strip().lower() not in ("y", "yes"):
            return EXIT_FAILED
    kept = restore_good_copy(paths, copy, key=key)
    print(_("Restored {copy}; the previous file is kept as {kept}.").format(copy=copy.name, kept=kept))
    return EXIT_OK


def cmd_unseal_damaged(paths: DataPaths, args: argparse.Namespace) -> int:
    """What was set aside in damaged/ while the data was in clear is kept sealed; an administrator lists it, or
    writes one file back in clear for a technician (audited)."""
    from spoke_client.domain.model import Role
    from spoke_client.services.vault import Gate, set_aside_files, unseal_set_aside

    if not _locked(paths):
        _err(_("The data on this computer is not encrypted: nothing in {folder} is sealed.").format(
            folder=paths.quarantine))
        return EXIT_FAILED
    who = _credentials(args)
    if who is None:
        _err(_needs_a_user().message)
        return EXIT_FAILED
    gate = Gate(paths)
    try:
        user = gate.login(*who)
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    services = gate.services
    try:
        if user.role != Role.ADMIN:
            _err(_("Only an administrator can open what was set aside as damaged."))
            return EXIT_FAILED
        if not args.name:
            names = set_aside_files(paths)
            for name in names:
                print(name)
            if not names:
                print(_("Nothing sealed is kept in {folder}.").format(folder=paths.quarantine))
            return EXIT_OK
        if not args.out:
            _err(_("Give the file to write it to: --out FILE."))
            return EXIT_USAGE
        size = unseal_set_aside(paths, services.key, args.name, Path(args.out))
        with services.store.write(user.id) as w:
            w.audit("unseal_set_aside", "file", args.name, f"{size} bytes in clear to {args.out}")
        print(_("Wrote {name} in clear to {out} ({size} bytes). It holds patient data: remove it when done.").format(
            name=args.name, out=args.out, size=size))
        return EXIT_OK
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    finally:
        services.close()


def cmd_enroll(paths: DataPaths, args: argparse.Namespace) -> int:
    import socket

    from spoke_client.services.sync_local import enroll

    services = _open(paths, args)
    if isinstance(services, int):
        return services
    try:
        name = enroll(services.store, paths, args.hub, args.code, args.name or socket.gethostname(),
                      allow_http=args.allow_http, ca_bundle=args.ca_bundle)
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    finally:
        services.close()
    print(_("Enrolled with the hub for {facility}.").format(facility=name))
    return EXIT_OK


def cmd_sync(paths: DataPaths, args: argparse.Namespace) -> int:
    from spoke_client.services.sync_local import LocalSync, sync_once, sync_status

    services = _open(paths, args)
    if isinstance(services, int):
        return services
    try:
        report = sync_once(services.store, paths, verify=True if args.check else None)
        local = LocalSync(services.store)
        refused = local.refused()
        files_waiting = local.pending_files()
        status = sync_status(services.store)
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    finally:
        services.close()
    print(_("Sent {p} changes ({a} were already at the hub), received {r}; {n} still waiting.").format(
        p=report.pushed, a=report.already_there, r=report.pulled, n=report.pending))
    print(_("Files: sent {u} ({kb} kB), {t} already at the hub, received {f}; {w} still waiting.").format(
        u=report.files_uploaded, kb=report.bytes_uploaded // 1024, t=report.files_already_there, f=report.files_fetched,
        w=files_waiting))
    if report.checked:
        if report.resynced:
            print(_("This computer and the hub disagreed; a full resync was done ({what}).").format(what=report.resynced))
        else:
            print(_("Checked: this computer and the hub agree."))
    if report.diverged:
        _err(_("This computer and the hub still disagree after a full resync; other computers of the facility may "
               "need to sync. Nothing on this computer was lost."))
    for item in refused:
        _err(_("Refused by the hub: {what}: {reason}").format(what=item.what, reason=item.reason))
    if status.clock_warning:
        _err(status.clock_warning)
    if report.error:
        _err(report.error)
    return EXIT_OK if report.ok and not refused else EXIT_FAILED


def cmd_bundle(paths: DataPaths, args: argparse.Namespace) -> int:
    # The bundle modules load after the sign-in's key derivation (_open): its memory is given back first.
    if args.bundle_command == "import":
        services = _open(paths, args)
        if isinstance(services, int):
            return services
        from spoke_client.services import bundles

        try:
            report = bundles.import_return(services.store, paths, Path(args.file))
        except bundles.BundleError as exc:
            _err(bundles.user_message(exc))
            return exc.exit_code
        except SpokeError as exc:
            _err(exc.message)
            return EXIT_FAILED
        finally:
            services.close()
        print(report.sentence())
        return EXIT_OK
    from sync.bundle import parse_size

    try:
        max_size = parse_size(args.max_size) if args.max_size else None
    except ValueError as exc:
        _err(_("'{text}' is not a size (say 700M or 4G).").format(text=args.max_size))
        return EXIT_USAGE
    services = _open(paths, args)
    if isinstance(services, int):
        return services
    from spoke_client.services import bundles

    out = Path(args.out)
    try:
        if args.carry:
            carried = bundles.carry(paths, out)
            sent, waiting, report = carried.copied, carried.left, None
        elif max_size is not None and out.is_dir():   # the parts that do not fit wait on this PC (--carry)
            result = bundles.send(services.store, paths, out, max_size)
            sent, waiting, report = result.on_drive, result.waiting, result.bundle
        else:
            report = bundles.export(services.store, paths, out, max_size, progress=None)
            sent, waiting = report.paths, ()
    except bundles.BundleError as exc:
        _err(bundles.user_message(exc))
        return exc.exit_code
    except ValueError as exc:   # a part size too small to hold anything
        _err(_("A part must be allowed at least a few hundred kilobytes ({reason}).").format(reason=exc))
        return EXIT_USAGE
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    finally:
        services.close()
    if args.carry and not sent and not waiting:
        print(_("No part of a bundle waits on this computer."))
        return EXIT_OK
    for path in sent:
        print(path)
    if report is not None:
        print(_("Written and checked: {c} changes and {f} files in {n} part(s), {mb:.1f} MB.").format(
            c=report.changes, f=report.files, n=len(report.paths), mb=report.size / 2**20))
    print(_("On the drive and checked: {n} part(s). The drive is safe to remove.").format(n=len(sent)))
    if waiting:
        print(_("{n} part(s) wait on this computer for another drive or another day: plug one in and run "
                "'spoke-client bundle export --carry --out DRIVE'.").format(n=len(waiting)))
    if report is not None and report.skipped_files:
        _err(_("{n} file(s) on this computer are damaged or missing and were left out.").format(n=report.skipped_files))
    return EXIT_OK


def cmd_devices(paths: DataPaths, args: argparse.Namespace) -> int:
    """Needs no database: a technician decodes what a device sent, from a log or a sniffer."""
    import json

    from spoke_client.domain.gatt import MalformedMeasurement, decode, parse_characteristic, parse_hex, to_json_dict

    try:
        measurement = decode(parse_characteristic(args.characteristic), parse_hex(args.hex))
    except MalformedMeasurement as exc:
        _err(_("Cannot decode: {reason}").format(reason=exc))
        return EXIT_USAGE
    print(json.dumps(to_json_dict(measurement), ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_print_rx(paths: DataPaths, args: argparse.Namespace) -> int:
    import time

    from spoke_client.services.printers import JobState

    services = _open(paths, args)
    if isinstance(services, int):
        return services
    try:
        printing = services.printing
        prescription = args.prescription or printing.prescription_of_case(args.case_id)
        actor = _system_admin(services)
        if args.pdf:
            out = printing.save_pdf(actor, prescription, Path(args.pdf), args.lang, args.size)
            print(_("Wrote {out}").format(out=out))
            return EXIT_OK
        job = printing.print(actor, prescription, args.lang, args.size, args.printer)
        deadline = time.monotonic() + max(args.wait, 0)
        while job.state in (JobState.WAITING, JobState.PRINTING) and time.monotonic() < deadline:
            time.sleep(0.5)
            job = printing.refresh_job(job.id)
    except SpokeError as exc:
        _err(exc.message)
        return EXIT_FAILED
    except OSError as exc:
        _err(_("Could not write {out}: {error}").format(out=args.pdf, error=exc.strerror or exc))
        return EXIT_FAILED
    finally:
        services.close()
    what = _("DUPLICATE copy {n}").format(n=job.copy) if job.duplicate else _("first copy")
    print(_("Print job on {printer} ({what}): {state}, {detail}").format(
        printer=job.printer, what=what, state=_(job.state.value), detail=job.detail))
    return EXIT_OK if job.state in (JobState.PRINTED, JobState.PRINTING, JobState.WAITING) else EXIT_FAILED


EXIT_UNREADABLE = 4


def cmd_verify_rx(paths: DataPaths, args: argparse.Namespace) -> int:
    """Works on a PC with no Spoke database as well (a pharmacist's), with --key."""
    import base64

    from spoke_client.services.hub_link import HUB_PUBLIC_KEY
    from spoke_client.services.rx_verify import Unreadable, verify_file

    keys = list(args.key)
    for key in keys:
        try:
            if len(base64.b64decode(key, validate=True)) != 32:
                raise ValueError
        except ValueError:
            _err(_("--key {key}: not a hub key (the base64 of 32 bytes, as the hub's /v1/hub/key gives it).").format(
                key=key[:60]))
            return EXIT_USAGE
    if paths.database.exists():
        services = _open(paths, args)
        if isinstance(services, int):
            return services
        try:
            known = services.store.get_setting(HUB_PUBLIC_KEY)
        finally:
            services.close()
        if known:
            keys.append(known)
    if not keys:
        _err(_("No hub key is known on this computer: enrol it with the hub, or give the hub's key with --key."))
        return EXIT_USAGE
    try:
        results = verify_file(Path(args.file), keys)
    except Unreadable as exc:
        _err(exc.message)
        return EXIT_UNREADABLE
    except OSError as exc:
        _err(_("Could not read {file}: {error}").format(file=args.file, error=exc.strerror or exc))
        return EXIT_UNREADABLE
    ok = True
    for r in results:
        s = r.summary
        print(_("Prescription {id} of {day}").format(id=s.prescription_id, day=s.issued_on))
        print(_("  Patient: {name} ({age_sex})").format(name=s.patient, age_sex=s.age_sex))
        print(_("  Doctor's registration number: {reg}").format(reg=s.registration_number))
        for line in s.medicines:
            print("  - " + "; ".join(x for x in line.split("|") if x))
        if r.signature_ok:
            print(_("  Signature: VALID, signed by the hub (key {key}).").format(key=s.key_id))
        else:
            ok = False
            print(_("  Signature: NOT VALID: {reason}. Do not dispense from this paper.").format(reason=r.reason))
    return EXIT_OK if ok else EXIT_FAILED
