"""Settings are declared once, with their type, default, range and who may change them."""

import pytest

from spoke_client.domain.errors import NotAllowed, ValidationFailed
from spoke_client.services.settings import AUDIO_MAX_SECONDS, CAMERA_SOURCE, IDLE_LOCK_MINUTES, PHOTO_LONG_SIDE, SETTINGS


def test_defaults_until_set_and_the_value_after(services, admin):
    assert services.settings.get(PHOTO_LONG_SIDE) == 1600 and services.settings.get(CAMERA_SOURCE) == ""
    services.settings.set(admin, PHOTO_LONG_SIDE, 1200)
    assert services.settings.get(PHOTO_LONG_SIDE) == 1200
    assert services.auth.idle_lock_minutes() == IDLE_LOCK_MINUTES.default


def test_only_an_administrator_changes_what_is_the_administrators(services, admin, paramedic):
    with pytest.raises(NotAllowed):
        services.settings.set(paramedic, AUDIO_MAX_SECONDS, 60)
    with pytest.raises(NotAllowed):
        services.auth.set_idle_lock_minutes(paramedic, 30)
    services.settings.set(paramedic, CAMERA_SOURCE, "http://10.0.0.5/stream.mjpg")   # anyone picks the camera
    assert services.settings.get(AUDIO_MAX_SECONDS) == 120
    assert services.settings.get(CAMERA_SOURCE) == "http://10.0.0.5/stream.mjpg"


def test_out_of_range_or_wrong_kind_is_refused_with_the_range_and_nothing_is_half_set(services, admin):
    with pytest.raises(ValidationFailed) as refused:
        services.settings.set_many(admin, {PHOTO_LONG_SIDE: 1000, AUDIO_MAX_SECONDS: 5})
    assert "10 to 600 seconds" in refused.value.problems[0].message
    assert services.settings.get(PHOTO_LONG_SIDE) == 1600, "the valid one was not written either"
    for bad in ("1200", True, 1.5):
        with pytest.raises(ValidationFailed):
            services.settings.set(admin, PHOTO_LONG_SIDE, bad)


def test_a_damaged_stored_value_reads_as_the_default(services, admin):
    services.store.set_setting(PHOTO_LONG_SIDE.key, "huge")
    services.store.set_setting(AUDIO_MAX_SECONDS.key, "99999")
    assert services.settings.get(PHOTO_LONG_SIDE) == 1600 and services.settings.get(AUDIO_MAX_SECONDS) == 120
    assert set(SETTINGS) == {"photo_long_side", "audio_max_seconds", "idle_lock_minutes", "camera_source",
                            "language"}
