"""Reading a printed prescription's QR code back, from its PDF or from a photo of the paper, and checking the
hub's signature on it offline (sync.rx_code).

zxing-cpp reads first (a clean render, or a phone photo at an angle, blurred, noisy, unevenly lit); when it finds
nothing, OpenCV's detectors try the picture as it is, then smoothed, scaled and binarised, until a code is found.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import zxingcpp

from spoke_client.domain.errors import SpokeError
from spoke_client.i18n import _
from sync import rx_code

log = logging.getLogger(__name__)

PDF_DPI = 200
MAX_SIDE = 4000     # pixels: larger photos are scaled down first (a 48-megapixel phone photo is 8000 wide)


class Unreadable(SpokeError):
    """No prescription code could be read from the file."""


def _variants(gray: np.ndarray):
    yield gray
    yield cv2.GaussianBlur(gray, (3, 3), 0)
    h, w = gray.shape[:2]
    if max(h, w) < 1600:
        yield cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    if max(h, w) > 2000:
        yield cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    yield cv2.threshold(cv2.GaussianBlur(gray, (5, 5), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]
    yield cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 51, 10)


def opencv_codes(gray: np.ndarray) -> list[str]:
    """OpenCV's detectors (the classic one, then the ArUco-based one) on the picture as it is and cleaned up."""
    detectors = [cv2.QRCodeDetector()]
    if hasattr(cv2, "QRCodeDetectorAruco"):
        detectors.append(cv2.QRCodeDetectorAruco())
    for detector in detectors:
        for variant in _variants(gray):
            try:
                text, _points, _straight = detector.detectAndDecode(variant)
                if text:
                    return [text]
                ok, texts, _points, _straight = detector.detectAndDecodeMulti(variant)
            except cv2.error:   # a damaged code can make OpenCV's decoder give up ("mode 11 not implemented")
                continue
            found = [t for t in texts if t] if ok else []
            if found:
                return found
    return []


def zxing_codes(gray: np.ndarray) -> list[str]:
    """zxing-cpp's reader: quicker and more tolerant of a photo at an angle than OpenCV's."""
    return [r.text for r in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode) if r.valid and r.text]


def codes_in_image(image: np.ndarray) -> list[str]:
    """The texts of the QR codes found in `image` (BGR or grayscale): zxing-cpp first, OpenCV if it finds none."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape[:2]
    if max(h, w) > MAX_SIDE:
        f = MAX_SIDE / max(h, w)
        gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return zxing_codes(gray) or opencv_codes(gray)


def images_of(path: Path) -> list[np.ndarray]:
    """The pages of a PDF rendered at 200 dpi, or the picture in an image file."""
    data = path.read_bytes()
    if data[:5] == b"%PDF-":
        import pypdfium2 as pdfium

        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError:
            raise Unreadable(_("{file} is not a readable PDF.").format(file=path.name)) from None
        pages = []
        for page in pdf:
            bitmap = page.render(scale=PDF_DPI / 72, grayscale=True)
            pages.append(np.array(bitmap.to_pil().convert("L")))
        return pages
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise Unreadable(_("{file} is neither a picture nor a PDF.").format(file=path.name))
    return [image]


def read_codes(path: Path) -> list[str]:
    """The prescription codes in a PDF or a photo; Unreadable when there is none."""
    codes: list[str] = []
    for image in images_of(path):
        codes += [c for c in codes_in_image(image) if c not in codes]
    if not codes:
        raise Unreadable(_("No QR code could be read in {file}: photograph the code straight on, filling most of "
                           "the picture, in good light.").format(file=path.name))
    return codes


def verify_file(path: Path, hub_keys: list[str]) -> list[rx_code.Checked]:
    """Every Spoke prescription code in the file, each checked against the hub keys known here."""
    out = []
    for text in read_codes(path):
        try:
            out.append(rx_code.check(text, hub_keys))
        except rx_code.CodeInvalid:
            log.info("a QR code that is not a prescription code was skipped")
    if not out:
        raise Unreadable(_("The QR code in {file} is not a Spoke prescription code.").format(file=path.name))
    return out
