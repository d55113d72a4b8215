"""The HTTP API, one module per role (each exports ``router``), as HMA splits it.

* :mod:`.media` -- hashing and matching: ``/v1/hash``, ``/v1/match``, ``/v1/scan``,
  ``/v1/scan/url``, ``/v1/match/hashes``;
* :mod:`.ops` -- operations: ``/v1/health``, ``/v1/ready``, ``/metrics``;
* :mod:`.curation` -- banks, entries, bulk imports, jobs (``/v1/banks``, ``/v1/entries``,
  ``/v1/jobs``), with :mod:`.bank_import` (spooling and the ``bank_import`` job);
* :mod:`.hma` -- the HMA-compatible ``/c``, ``/h``, ``/m`` routes;
* :mod:`.provenance` -- ``/v1/provenance``;
* :mod:`.review` -- ``/v1/review/*`` (signals, cases, false positives).

The prompt/image guard routes are :mod:`sentinelle.service.routes_guard`.
"""
