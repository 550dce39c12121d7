"""The settings people change, each declared once: key, type, default, range and who may change it.

The UI and the services ask this service, never the store: the rule that only an administrator changes the
photo size is here, not in a widget. (What sync keeps about its link, such as the pull cursor, is state, not a
setting: services.hub_link.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from spoke_client.domain.errors import FieldProblem, NotAllowed, ValidationFailed
from spoke_client.domain.model import Role, User
from spoke_client.i18n import _, available_languages
from spoke_client.services.store import Store

T = TypeVar("T", int, str)


@dataclass(frozen=True)
class Setting(Generic[T]):
    key: str
    kind: type
    default: T
    minimum: int | None = None
    maximum: int | None = None
    admin_only: bool = True

    def parse(self, text: str | None) -> T:
        """The stored text as a value; anything unreadable or out of range falls back to the default."""
        if text is None or text == "":
            return self.default
        if self.kind is int:
            if not (text.isascii() and text.isdigit()):
                return self.default
            value = int(text)
            return value if self.in_range(value) else self.default
        return text  # type: ignore[return-value]

    def in_range(self, value: int) -> bool:
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)


PHOTO_LONG_SIDE = Setting("photo_long_side", int, 1600, 640, 4000)          # px: a rash or a wound edge
AUDIO_MAX_SECONDS = Setting("audio_max_seconds", int, 120, 10, 600)
IDLE_LOCK_MINUTES = Setting("idle_lock_minutes", int, 10, 1, 120)
CAMERA_SOURCE = Setting("camera_source", str, "", admin_only=False)          # the camera last used on this PC
# The language Spoke starts in on this PC ("hi"; "" for the system's), as last chosen on the sign-in screen or in the
# main window: one per PC, as the sign-in screen is shown before anyone is known.
LANGUAGE = Setting("language", str, "", admin_only=False)
SETTINGS = {s.key: s for s in (PHOTO_LONG_SIDE, AUDIO_MAX_SECONDS, IDLE_LOCK_MINUTES, CAMERA_SOURCE, LANGUAGE)}


def _range_message(setting: Setting) -> str:
    return {
        PHOTO_LONG_SIDE.key: _("The long side of a photo is {lo} to {hi} pixels."),
        AUDIO_MAX_SECONDS.key: _("A recording may be {lo} to {hi} seconds long."),
        IDLE_LOCK_MINUTES.key: _("The idle lock takes {lo} to {hi} minutes."),
    }.get(setting.key, _("Choose a value from {lo} to {hi}.")).format(lo=setting.minimum, hi=setting.maximum)


class SettingsService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, setting: Setting[T]) -> T:
        return setting.parse(self.store.get_setting(setting.key))

    def set(self, actor: User, setting: Setting[T], value: T) -> None:
        self.set_many(actor, {setting: value})

    def remember_language(self, actor: User | None, language: str) -> None:
        """The language this PC starts in from now on. Anyone may choose it, on the sign-in screen before anyone has
        signed in too (then the audit entry has no user)."""
        if language not in {code for code, _name in available_languages()}:
            raise ValidationFailed([FieldProblem(LANGUAGE.key, _("Spoke has no translation in this language."))])
        with self.store.write(actor.id if actor is not None else None) as w:
            w.set_setting(LANGUAGE.key, language)
            w.audit("setting", "setting", LANGUAGE.key, language)

    def set_many(self, actor: User, values: dict[Setting, object]) -> None:
        """Checks who may change each and that its value is of its type and range, then writes them all in one
        transaction, each audited with its value."""
        for setting, value in values.items():
            _check(actor, setting, value)
        with self.store.write(actor.id) as w:
            for setting, value in values.items():
                w.set_setting(setting.key, str(value))
                w.audit("setting", "setting", setting.key, str(value))


def _check(actor: User, setting: Setting, value: object) -> None:
    if setting.admin_only and actor.role != Role.ADMIN:
        raise NotAllowed(_("Only an administrator may change this setting."))
    if not isinstance(value, setting.kind) or isinstance(value, bool):
        raise ValidationFailed([FieldProblem(setting.key, _("This setting takes another kind of value."))])
    if setting.kind is int and not setting.in_range(value):  # type: ignore[arg-type]
        raise ValidationFailed([FieldProblem(setting.key, _range_message(setting))])
    if setting.kind is str and len(value) > 500:  # type: ignore[arg-type]
        raise ValidationFailed([FieldProblem(setting.key, _("This value is too long."))])
