"""The foundation: protocol, datums, the city, i18n, the store, the house's own rules."""
