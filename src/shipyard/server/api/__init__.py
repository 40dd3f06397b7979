"""One router per capability; each is a thin translation of service calls."""
