"""Live hash exchanges: NCMEC, StopNCII, ThreatExchange, HTTP feeds and other Sentinelle instances.

* :mod:`.api` -- the :class:`~.api.ExchangeAPI` interface every client implements
  (modelled on python-threatexchange's ``SignalExchangeAPI``) and its records.
* :mod:`.registry` -- the one list of built-in exchange types.
* one module per counterpart: :mod:`.ncmec`, :mod:`.stopncii`,
  :mod:`.threatexchange`, :mod:`.http_feed`, :mod:`.peer` (Sentinelle to Sentinelle).
* :mod:`.store` -- configuration, status and the atomic page + checkpoint write.
* :mod:`.runner` -- the fetch loop (lease, retries, quarantine) and its job.
* :mod:`.feedback` -- review decisions sent back to the source, through the job queue.
* :mod:`.publish` -- this instance's signed feed of confirmed hashes for peers.
* :mod:`.credentials`, :mod:`.transport`, :mod:`.xmlsafe` -- secrets, HTTP, XML.

See ``docs/EXCHANGES.md``.
"""
