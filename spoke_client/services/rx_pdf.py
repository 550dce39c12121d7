"""The printed e-prescription: a PDF (reportlab) on A5 or A4, in English, or bilingual in the patient's language and
English, laid out as the Telemedicine Practice Guidelines' sample prescription asks: the hub and the doctor at
the head, the patient, the consultation, vitals, complaints and findings, diagnosis, the medicines written out
in words, advice, investigations, follow-up and referral, allergies, the doctor's signature line, the QR code
that lets a pharmacist check the paper offline (sync.rx_code), a footer and page numbers on every page.

A cancelled prescription prints only under a CANCELLED mark; a copy after the first under a DUPLICATE mark.
Every string of the page goes through the catalog of the language asked for (a print in Hindi while the screen
is in English works); Indic text is shaped by HarfBuzz (uharfbuzz) and set in the Noto font of its script
(spoke_client.services.fonts).
"""

from __future__ import annotations

import functools
import gettext
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import zxingcpp
from PIL import Image
from reportlab.graphics.shapes import Drawing, Rect
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from spoke_client import i18n
from spoke_client.domain import dosage
from spoke_client.domain.consultation import Prescription, PrescriptionStatus
from spoke_client.domain.model import Patient, VitalsRecord
from spoke_client.services import fonts

SIZES = {"A5": A5, "A4": A4}
TITLE_EN = "Prescription"


@dataclass(frozen=True)
class RxDocument:
    """Everything the paper shows, gathered by the print service from the local database."""

    prescription: Prescription
    patient: Patient
    facility_name: str
    vitals: VitalsRecord | None = None
    complaints: tuple[str, ...] = ()     # the pick-list's source strings (translated on the paper)
    complaint_text: str = ""
    duration: str = ""
    findings: str = ""
    qr_text: str = ""                    # the hub's signed code; "" when it sent none
    copy: int = 1                        # 2 and more: DUPLICATE
    printed_on: date | None = None


@functools.cache
def translation(language: str) -> gettext.NullTranslations:
    """The catalog of `language` ("en" is the source strings); any language with a catalog in resources/locale."""
    if language == i18n.SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    t = gettext.translation(i18n.DOMAIN, i18n.LOCALE_DIR, languages=[language], fallback=True)
    if type(t) is gettext.NullTranslations:
        raise ValueError(f"No catalog for the language {language!r} in {i18n.LOCALE_DIR}")
    return t


def languages() -> list[str]:
    """The languages a prescription can be printed in: English and every catalog present."""
    found = sorted(p.name for p in i18n.LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo").exists())
    return ["en", *found]


class _Text:
    """The labels of one print: in the patient's language, with English after it when that is another language."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.tr = translation(language)
        self.bilingual = language != i18n.SOURCE_LANGUAGE

    def __call__(self, message: str) -> str:
        """A label: 'दवाइयाँ / Medicines' (or 'Medicines' in English)."""
        local = self.tr.gettext(message)
        return f"{local} / {message}" if self.bilingual and local != message else message

    def local(self, message: str) -> str:
        return self.tr.gettext(message)


def _(message: str) -> str:
    """Marks a label for the catalog (xgettext); translated per print by _Text."""
    return message


class _Styles:
    def __init__(self, size: str) -> None:
        base = 8.2 if size == "A5" else 9.5
        font = fonts.base_font()
        common = dict(fontName=font, shaping=0, leading=base * 1.3)
        self.body = ParagraphStyle("body", fontSize=base, **common)
        self.small = ParagraphStyle("small", fontSize=base - 1.3, **{**common, "leading": (base - 1.3) * 1.3},
                                    textColor=colors.HexColor("#333333"))
        self.label = ParagraphStyle("label", fontSize=base - 0.8, **{**common, "leading": (base - 0.8) * 1.3},
                                    textColor=colors.HexColor("#444444"))
        self.head = ParagraphStyle("head", fontSize=base + 5, **{**common, "leading": (base + 5) * 1.25})
        self.section = ParagraphStyle("section", fontSize=base + 0.8, spaceBefore=4, spaceAfter=1,
                                      **{**common, "leading": (base + 0.8) * 1.3})


class _Paragraph(Paragraph):
    """A paragraph that breaks its lines once per width: a table measures its cells and then draws them, and each
    wrap of a shaped paragraph shapes every word again with HarfBuzz."""

    def wrap(self, availWidth, availHeight):  # noqa: N803 - reportlab's names
        if getattr(self, "_wrapped_at", None) == availWidth:
            return self.width, self.height
        size = super().wrap(availWidth, availHeight)
        self._wrapped_at = availWidth
        return size


@functools.cache
def _shaped(style: ParagraphStyle) -> ParagraphStyle:
    return ParagraphStyle(f"{style.name}-shaped", parent=style, shaping=1)


def _paragraph(markup: str, text: str, style: ParagraphStyle) -> Paragraph:
    """Shaped by HarfBuzz when the text holds an Indic script; Latin text needs no shaping (and it costs half the
    page's time)."""
    return _Paragraph(markup, _shaped(style) if fonts.needs_shaping(text) else style)


def _p(text: str, style: ParagraphStyle, bold: bool = False) -> Paragraph:
    body = fonts.markup(text).replace("\n", "<br/>")
    return _paragraph(f"<b>{body}</b>" if bold else body, text, style)


class _QR(Flowable):
    """The signed QR code (error correction M; zxing-cpp chooses the mask that reads best), drawn as one 1-bit
    image at 2 pixels a module: sharp on paper, and a renderer that smooths a scaled image (pdfium does) still
    draws clean edges."""

    def __init__(self, text: str, side: float) -> None:
        super().__init__()
        code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")   # never a Micro QR
        self.image = Image.fromarray(np.array(code.to_image(scale=2, add_quiet_zones=True))).convert("1")
        self.side = side
        self.width = self.height = side

    def draw(self) -> None:
        self.canv.drawImage(ImageReader(self.image), 0, 0, self.side, self.side)


def _numbered(footer: list[str], mark: str, mark_color: colors.Color, page_word: str):
    """A canvas that writes 'Page n of N' (known only at the end), the footer and the mark on every page."""

    class NumberedCanvas(pdfcanvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            width, height = self._pagesize
            font = fonts.base_font()
            self.saveState()
            self.setFont(font, 6.8)
            self.setFillColor(colors.HexColor("#333333"))
            left, right = 10 * mm + 6, width - 10 * mm - 6     # the frame's edges, inside its padding
            self.line(left, 13 * mm, right, 13 * mm)
            for i, line in enumerate(footer):   # the patient's language above English
                _draw_mixed(self, left, (9.5 - 3.2 * i) * mm, line, 6.8)
            pages = page_word.format(n=self._pageNumber, total=total)
            _draw_mixed(self, right, 9.5 * mm, pages, 6.8, right=True)
            if mark:
                self.setFillColor(mark_color)
                self.setFillAlpha(0.22)
                self.translate(width / 2, height / 2)
                self.rotate(35)
                size = width / 7.5
                self.setFont(fonts.font_name(fonts.LATIN) + "-Bold", size)
                self.drawCentredString(0, -size / 3, mark)
            self.restoreState()

    return NumberedCanvas


_LINE_STYLE = ParagraphStyle("line", fontSize=6.8, leading=6.8 * 1.2, textColor=colors.HexColor("#333333"))


@functools.lru_cache(maxsize=256)
def _line(text: str) -> tuple[Paragraph | None, float]:
    """A footer line, made once: a paragraph when it holds Indic text (canvas.drawString does not shape it: seen
    with Tamil, the vowel signs came apart), else None for plain drawString; and its width."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if not fonts.needs_shaping(text):
        return None, stringWidth(text, fonts.base_font(), _LINE_STYLE.fontSize)
    style = ParagraphStyle("line-shaped", parent=_LINE_STYLE, fontName=fonts.base_font(), shaping=1)
    para = Paragraph(fonts.markup(text), style)
    para.wrap(200 * mm, 10 * mm)
    return para, max(para.getActualLineWidths0() or [0])


def _draw_mixed(c: pdfcanvas.Canvas, x: float, y: float, text: str, size: float, right: bool = False) -> None:
    para, width = _line(text)
    if right:
        x -= width
    if para is None:
        c.setFont(fonts.base_font(), _LINE_STYLE.fontSize)
        c.drawString(x, y, text)
    else:
        para.drawOn(c, x, y - size * 0.25)


def _vitals_text(v: VitalsRecord | None, t: _Text) -> str:
    if v is None:
        return ""
    s = v.vitals
    parts = []
    if s.systolic_mmhg and s.diastolic_mmhg:
        parts.append(f"BP {s.systolic_mmhg}/{s.diastolic_mmhg} mmHg")
    if s.pulse_per_min:
        parts.append(f"{t.local(_('Pulse'))} {s.pulse_per_min}/min")
    if s.respiratory_rate_per_min:
        parts.append(f"RR {s.respiratory_rate_per_min}/min")
    if s.temperature_c:
        parts.append(f"{t.local(_('Temp.'))} {s.temperature_c:.1f} °C")
    if s.spo2_pct:
        parts.append(f"SpO2 {s.spo2_pct}%" + (f" ({t.local(_('on oxygen'))})" if s.on_supplemental_oxygen else ""))
    if s.weight_kg:
        parts.append(f"{t.local(_('Weight'))} {s.weight_kg:g} kg")
    if s.glucose_mg_dl:
        parts.append(f"{t.local(_('Glucose'))} {s.glucose_mg_dl} mg/dL")
    return ", ".join(parts)


def render(doc: RxDocument, language: str = "en", size: str = "A5") -> bytes:
    """The prescription's PDF. `language`: the patient's language (any catalog present); `size`: A5 or A4."""
    if size not in SIZES:
        raise ValueError(f"Paper size {size!r}: A5 or A4")
    t = _Text(language)
    tr = t.tr
    st = _Styles(size)
    p = doc.prescription
    page = SIZES[size]
    margin = 10 * mm
    width = page[0] - 2 * margin - 12       # the frame's own padding: 6 points on each side
    cancelled = p.status == PrescriptionStatus.CANCELLED
    story: list[Flowable] = []

    # The head: hub, doctor, and the code at the right.
    qr_side = (52 if size == "A5" else 60) * mm
    doctor = p.prescriber
    head = [
        _p(p.hub_name, st.head, bold=True),
        _p(f"{doctor.name}, {doctor.qualification}", st.body, bold=True),
        _p(t(_("Registration no.")) + f": {doctor.registration_number}"
           + (f" ({doctor.council})" if doctor.council else ""), st.body),
        Spacer(1, 2 * mm),
        _p(t(_("Teleconsultation from")) + f": {doc.facility_name}", st.small),
        _p(t(_("Date")) + f": {p.issued_at.strftime('%d %b %Y, %H:%M')}", st.small),
        _p(t(_("Consultation")) + ": " + ", ".join((t(_consultation_type(p.consultation_type)),
                                                    t(_consultation_mode(p.consultation_mode)))), st.small),
    ]
    if doc.qr_text:
        code: Flowable = _QR(doc.qr_text, qr_side)
    else:
        code = _p(t(_("No verification code: this prescription was issued before codes were printed.")), st.small)
    story.append(Table([[head, code]], colWidths=[width - qr_side - 2 * mm, qr_side + 2 * mm],
                       style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                         ("RIGHTPADDING", (0, 0), (-1, -1), 0)])))
    if doc.copy > 1:
        story.append(_p(t(_("DUPLICATE")) + " - " + tr.gettext(_("copy {n}, printed {day}")).format(
            n=doc.copy, day=(doc.printed_on or date.today()).strftime("%d %b %Y")), st.section, bold=True))
    if cancelled:
        story.append(_p(t(_("CANCELLED")) + (f": {p.cancelled_reason}" if p.cancelled_reason else ""), st.section,
                        bold=True))
    story.append(_rule(width))

    # The patient.
    pt = doc.patient
    sex = {"female": _("Female"), "male": _("Male"), "other": _("Other")}.get(str(pt.sex), str(pt.sex))
    rows = [
        [_field(t(_("Patient")), pt.name, st, strong=True),
         _field(t(_("Age / sex")), f"{pt.age_text(p.issued_at.date())} / {t.local(sex)}", st)],
        [_field(t(_("ABHA number")), _abha(pt.abha_number) or "-", st), _field(t(_("Contact")), pt.phone or "-", st)],
    ]
    story.append(_grid(rows, width, (0.58, 0.42)))

    allergies = tuple(pt.allergies) or p.allergies_noted
    known = ", ".join(_allergy(a, t) for a in allergies) if allergies else t.local(_("not recorded"))
    story.append(_p(t(_("Known allergies")) + f": {known}", st.body, bold=bool(allergies) and allergies != ("NKDA",)))

    vitals = _vitals_text(doc.vitals, t)
    if vitals:
        story.append(_field(t(_("Vitals")), vitals, st))
    complaints = [tr.gettext(c) for c in doc.complaints] + ([doc.complaint_text] if doc.complaint_text else [])
    if complaints:
        since = tr.gettext(_("(since {duration})")).format(duration=doc.duration) if doc.duration else ""
        text = ", ".join(complaints) + (f" {since}" if since else "")
        story.append(_field(t(_("Chief complaints")), text, st))
    if doc.findings:
        story.append(_field(t(_("Relevant findings")), doc.findings, st))
    diagnosis = p.diagnosis + (f" (ICD-10 {p.icd10_code})" if p.icd10_code else "")
    story.append(_field(t(_("Provisional diagnosis")), diagnosis, st, strong=True))

    # The medicines.
    if p.medicines:
        story.append(_p(t(_("Medicines")), st.section, bold=True))
        rows = [[_p("#", st.label), _p(t(_("Medicine")), st.label), _p(t(_("How to take")), st.label),
                 _p(t(_("Quantity")), st.label)]]
        for i, m in enumerate(p.medicines, 1):
            what = " ".join(x for x in (m.name.upper(), m.strength, m.form) if x)
            how = dosage.sentence(m.dose, m.frequency, m.duration_days, m.instructions, tr)
            if t.bilingual:
                english = dosage.sentence(m.dose, m.frequency, m.duration_days, m.instructions)
                how_cell = [_p(how, st.body), _p(english, st.small)]
            else:
                how_cell = [_p(how, st.body)]
            if m.route and m.route != "oral":
                how_cell.append(_p(f"({m.route})", st.small))
            rows.append([_p(str(i), st.body), _p(what, st.body, bold=True), how_cell, _p(m.quantity or "-", st.body)])
        table = Table(rows, colWidths=[w * width for w in (0.05, 0.33, 0.47, 0.15)], repeatRows=1)
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ]))
        story.append(table)
    else:
        story.append(_p(t(_("No medicines prescribed.")), st.body))

    story.append(Spacer(1, 1.5 * mm))
    after: list[Flowable] = []
    for label, value in ((_("Investigations"), ", ".join(p.investigations)), (_("Advice"), p.advice)):
        if value:
            after.append(_field(t(label), value, st))
    if p.follow_up:
        after.append(_field(t(_("Follow-up")), p.follow_up.strftime("%d %b %Y"), st, strong=True))
    if p.referral is not None:
        r = p.referral
        urgency = {"routine": _("routine"), "urgent": _("urgent"), "emergency": _("EMERGENCY")}.get(r.urgency, r.urgency)
        text = r.to + (f" ({r.speciality})" if r.speciality else "") + f", {t.local(urgency)}"
        after.append(_field(t(_("Referral")), text + (f": {r.reason}" if r.reason else ""), st,
                            strong=r.urgency != "routine"))

    # The signature line, kept together, beside advice and follow-up when they are short.
    sign = [Spacer(1, 8 * mm), _rule(width * 0.42, align="LEFT"),
            _p(doctor.name, st.body, bold=True), _p(doctor.qualification, st.small),
            _p(t(_("Registration no.")) + f": {doctor.registration_number}", st.small),
            _p(t(_("Signed digitally by the hub")) + f" ({p.id[:8]})", st.small)]
    short = len(", ".join(p.investigations)) + len(p.advice) + len(p.referral.reason if p.referral else "") < 500
    cells = TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    if short:
        story.append(KeepTogether(Table([[after, sign]], colWidths=[width * 0.56, width * 0.44], style=cells)))
    else:
        story += after
        story.append(KeepTogether(Table([[None, sign]], colWidths=[width * 0.56, width * 0.44], style=cells)))

    footer_en = _("This prescription is generated on a teleconsultation")
    footer = [t.local(footer_en), footer_en] if t.local(footer_en) != footer_en else [footer_en]
    mark = "CANCELLED" if cancelled else ("DUPLICATE" if doc.copy > 1 else "")
    mark_color = colors.red if cancelled else colors.HexColor("#555555")
    page_word = tr.gettext(_("Page {n} of {total}"))
    out = io.BytesIO()
    template = SimpleDocTemplate(out, pagesize=page, leftMargin=margin, rightMargin=margin, topMargin=margin,
                                 bottomMargin=16 * mm, title=TITLE_EN, author=p.hub_name, subject=p.id,
                                 creator="Spoke")
    template.build(story, canvasmaker=_numbered(footer, mark, mark_color, page_word))
    return out.getvalue()


def _field(label: str, value: str, st: _Styles, strong: bool = False) -> Paragraph:
    """'Label: value' on one paragraph, the label in bold."""
    body = fonts.markup(value).replace("\n", "<br/>")
    return _paragraph(f"<b>{fonts.markup(label)}:</b> " + (f"<b>{body}</b>" if strong else body), label + value, st.body)


def _consultation_type(kind: str) -> str:
    return {"first": _("first consultation"), "follow_up": _("follow-up consultation")}.get(kind, kind)


def _consultation_mode(mode: str) -> str:
    return {"video": _("video"), "audio": _("audio"), "store_and_forward": _("store and forward")}.get(mode, mode)


def _allergy(a: str, t: _Text) -> str:
    return t.local(_("no known drug allergies")) if a == "NKDA" else a


def _abha(number: str) -> str:
    d = "".join(ch for ch in number if ch.isdigit())
    return f"{d[:2]}-{d[2:6]}-{d[6:10]}-{d[10:]}" if len(d) == 14 else number


def _grid(rows: list[list[Flowable]], width: float, fractions: tuple[float, ...]) -> Table:
    table = Table(rows, colWidths=[f * width for f in fractions])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
    return table


def _rule(width: float, align: str = "LEFT") -> Flowable:
    d = Drawing(width, 3)
    d.add(Rect(0, 1, width, 0.5, fillColor=colors.HexColor("#666666"), strokeColor=None))
    d.hAlign = align
    return d

