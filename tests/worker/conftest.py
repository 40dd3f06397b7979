"""The real-worker fixture of ``test_leases``, for the other modules here."""

from tests.worker.test_leases import setup  # noqa: F401
