"""The error every configuration check raises."""


class ConfigError(ValueError):
    """A configuration field has a value the run cannot use."""
