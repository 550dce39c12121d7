#!/usr/bin/env bash
# The one string catalog: `extract` refreshes resources/locale/spoke.pot and merges it into every
# language's .po; `compile` builds the .mo files the app loads. Adding a language is one new .po file:
#   msginit -i resources/locale/spoke.pot -l ta -o resources/locale/ta/LC_MESSAGES/spoke.po
set -euo pipefail
cd "$(dirname "$0")/.."
LOCALES=resources/locale
case "${1:-compile}" in
  extract)
    find spoke_client sync -name '*.py' | sort | xargs xgettext --language=Python --keyword=_ --keyword=N_ --keyword=ngettext:1,2 \
      --from-code=UTF-8 --package-name=spoke --add-comments=TRANSLATORS --sort-by-file -o "$LOCALES/spoke.pot"
    # The hub console's Jinja templates: Jinja's own parser finds their _() and ngettext() calls (xgettext's Python
    # reader would trip on HTML), written as a small .pot that xgettext joins to the catalog's template.
    PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
    TEMPLATES_POT=$(mktemp --suffix=.pot)
    trap 'rm -f "$TEMPLATES_POT"' EXIT
    "$PY" - "$TEMPLATES_POT" sync/hub/templates/*.html <<'PYTHON'
import sys
from jinja2 import Environment
from jinja2.ext import extract_from_ast

def po(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

found = {}   # msgid (or (singular, plural)) -> references, in the order first seen
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        ast = Environment().parse(f.read())
    for line, _function, message in extract_from_ast(ast, ("_", "ngettext")):
        key = message if isinstance(message, str) else tuple(message[:2])
        if key and all(isinstance(m, str) for m in ([key] if isinstance(key, str) else key)):
            found.setdefault(key, []).append(f"{path}:{line}")
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n')
    for key, refs in found.items():
        out.write(f"#: {' '.join(refs)}\n")
        if "%(" in "".join([key] if isinstance(key, str) else key):
            out.write("#, python-format\n")
        if isinstance(key, str):
            out.write(f"msgid {po(key)}\nmsgstr \"\"\n\n")
        else:
            out.write(f"msgid {po(key[0])}\nmsgid_plural {po(key[1])}\nmsgstr[0] \"\"\nmsgstr[1] \"\"\n\n")
PYTHON
    xgettext --join-existing --from-code=UTF-8 --package-name=spoke --sort-by-file -o "$LOCALES/spoke.pot" "$TEMPLATES_POT"
    for po in "$LOCALES"/*/LC_MESSAGES/spoke.po; do
      if [ -e "$po" ]; then msgmerge --quiet --update --backup=none "$po" "$LOCALES/spoke.pot"; fi
    done
    ;;
  compile)
    for po in "$LOCALES"/*/LC_MESSAGES/spoke.po; do
      if [ -e "$po" ]; then msgfmt --check-format -o "${po%.po}.mo" "$po"; fi
    done
    # Qt's own words on Spoke's screens (standard buttons, the text fields' menu: QT_WORDS in spoke_client/i18n.py),
    # from the same catalog, as the Qt translation file each language's screens load (qt.qm, built like the .mo).
    PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
    LRELEASE=${LRELEASE:-$([ -x .venv/bin/pyside6-lrelease ] && echo .venv/bin/pyside6-lrelease || command -v pyside6-lrelease || true)}
    if [ -z "$LRELEASE" ]; then
      echo "scripts/i18n.sh: pyside6-lrelease not found: Qt's own buttons stay in English" >&2
      exit 0
    fi
    for mo in "$LOCALES"/*/LC_MESSAGES/spoke.mo; do
      [ -e "$mo" ] || continue
      TS=$(mktemp --suffix=.ts)
      "$PY" - "$mo" "$TS" <<'PYTHON'
import gettext
import sys
from xml.sax.saxutils import escape

sys.path.insert(0, ".")
from spoke_client.i18n import QT_WORDS  # noqa: E402

with open(sys.argv[1], "rb") as f:
    catalog = gettext.GNUTranslations(f)
language = catalog.info().get("language", "")
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write(f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n<TS version="2.1" language="{escape(language)}">\n')
    for context, words in QT_WORDS.items():
        out.write(f"<context><name>{escape(context)}</name>\n")
        for word in words:
            translated = catalog.gettext(word)
            if translated != word:
                out.write(f"<message><source>{escape(word)}</source><translation>{escape(translated)}</translation>"
                          "</message>\n")
        out.write("</context>\n")
    out.write("</TS>\n")
PYTHON
      "$LRELEASE" -silent "$TS" -qm "$(dirname "$mo")/qt.qm"
      rm -f "$TS"
    done
    ;;
  *) echo "usage: scripts/i18n.sh extract|compile"; exit 2 ;;
esac
