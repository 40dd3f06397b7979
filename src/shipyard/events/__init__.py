"""Events: a durable message bus in the metadata store (topics, subscriptions with their own
copy of each message, at-least-once delivery under leases, backoff, dead letters, ordering
keys, seek), which schedules, triggers and the closed loop stand on.

Modules: ``models`` (value types), ``bus`` (the service functions callers use; ``publish_in``
writes a message inside another change's transaction: the outbox), which re-exports them from
``topics``, ``publishing``, ``delivery`` and ``waiting``.
"""
