"""The gettext catalogs (installed as the package `bot.locales`, so they travel with the wheel)."""
