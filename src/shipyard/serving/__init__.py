"""Serving: endpoints, the model versions deployed to them, their traffic split and the
replica processes that answer predictions.

Modules: ``models`` (value types), ``port`` (what the SDK needs), ``service`` (the control
plane over the store), ``traffic`` (splits and the router), ``instances`` (request rows to
model input), ``wire`` (the server-replica framing), ``replica`` (the replica process) and
``replicas`` (the server's supervisor of replica processes).
"""
