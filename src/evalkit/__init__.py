"""evalkit: compare neural audio codecs fairly — objective metrics, listening tests, reports."""

__version__ = "0.1.0"
