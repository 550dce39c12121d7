"""The camera through OpenCV's real capture path: a video file as a USB camera, and an MJPEG server as an IP
camera; photos come out at clinical size, under 400 KB, with no EXIF."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spoke_client.services.camera import Camera, CameraUnavailable, encode_photo, parse_source


def test_a_photo_from_the_camera_is_clinical_size_without_exif(camera_video):
    with Camera(str(camera_video)) as cam:
        frames = [cam.read() for _ in range(45)]          # more than the file holds: it loops like a live camera
    assert all(f.shape == (1080, 1920, 3) for f in frames)
    photo = encode_photo(frames[-1])
    assert (photo.width_px, photo.height_px) == (1600, 900)
    assert len(photo.jpeg) < 400_000, len(photo.jpeg)
    assert photo.jpeg[:2] == b"\xff\xd8" and b"\xff\xe1" not in photo.jpeg[:2000], "no EXIF (APP1) segment"
    decoded = cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (900, 1600, 3)
    small = cv2.resize(frames[-1], (1600, 900), interpolation=cv2.INTER_AREA)
    assert float(np.mean(np.abs(decoded.astype(int) - small.astype(int)))) < 4, "the picture is what the camera saw"


def test_a_noisy_picture_is_squeezed_under_the_limit():
    noise = np.random.default_rng(1).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    photo = encode_photo(noise, max_bytes=400_000)
    assert photo.quality < 85 and (photo.width_px, photo.height_px) == (1600, 1200)


def test_an_ip_camera_by_url(ip_camera):
    with Camera(ip_camera) as cam:
        frame = cam.read()
    assert frame.shape == (720, 1280, 3)
    assert encode_photo(frame, long_side=800).width_px == 800


@pytest.mark.parametrize("source", ["7", "http://127.0.0.1:9/none.mjpg"])
def test_no_camera_is_a_clear_message(source):
    with pytest.raises(CameraUnavailable) as missing:
        Camera(source)
    assert "No picture from" in missing.value.message


def test_camera_sources():
    assert parse_source("0") == 0 and parse_source(" 2 ") == 2
    assert parse_source("rtsp://10.0.0.5/stream") == "rtsp://10.0.0.5/stream"
    with pytest.raises(CameraUnavailable):
        parse_source("  ")
