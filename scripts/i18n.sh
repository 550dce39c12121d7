#!/usr/bin/env bash
# The one string catalog: `extract` refreshes resources/locale/spoke.pot and merges it into every
# language's .po; `compile` builds the .mo files the app loads. Adding a language is one new .po file:
#   msginit -i resources/locale/spoke.pot -l ta -o resources/locale/ta/LC_MESSAGES/spoke.po
set -euo pipefail
cd "$(dirname "$0")/.."
LOCALES=resources/locale
case "${1:-compile}" in
  extract)
    find spoke_client sync -name '*.py' | sort | xargs xgettext --language=Python --keyword=_ --keyword=ngettext:1,2 \
      --from-code=UTF-8 --package-name=spoke --add-comments=TRANSLATORS --sort-by-file -o "$LOCALES/spoke.pot"
    for po in "$LOCALES"/*/LC_MESSAGES/spoke.po; do
      if [ -e "$po" ]; then msgmerge --quiet --update --backup=none "$po" "$LOCALES/spoke.pot"; fi
    done
    ;;
  compile)
    for po in "$LOCALES"/*/LC_MESSAGES/spoke.po; do
      if [ -e "$po" ]; then msgfmt --check-format -o "${po%.po}.mo" "$po"; fi
    done
    ;;
  *) echo "usage: scripts/i18n.sh extract|compile"; exit 2 ;;
esac
