"""The review console: its pages (:mod:`.routes`) and their building blocks.

* :mod:`.routes` -- the HTML pages under ``/console``: ``review`` (login, queue, cases,
  reveals, decisions, reports, settings, metrics), ``admin`` (holds, audit, users),
  ``password`` (change one's own password);

* :mod:`.security` -- session cookie, CSRF tokens and origin check, signed media
  links, security headers;
* :mod:`.session` -- FastAPI dependencies: the logged-in viewer, CSRF-checked actions;
* :mod:`.blur` -- blurred, grayscale previews rendered in memory;
* :mod:`.keyframes` -- videos as strips of key frames;
* :mod:`.views` -- Jinja2 templates (``templates/console``), static files, error pages;
* :mod:`.reports` -- report drafts with their XSD validation result;
* :mod:`.demo` -- the reviewer account and case of ``sentinelle serve --demo``.
"""
