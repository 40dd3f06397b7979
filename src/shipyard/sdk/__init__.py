"""The SDK behind ``import shipyard``: one module of functions per capability (``tracking``,
``lineage``, ``audit``, ``registry``, ``pipelines``, ``identity``), each delegating to that
capability's port in the current session (``session``): local (``sdk.local``) or remote
(``shipyard.client``)."""
