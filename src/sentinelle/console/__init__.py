"""The review console's building blocks (the pages are in
:mod:`sentinelle.service.routes_console`).

* :mod:`.security` -- session cookie, CSRF tokens and origin check, signed media
  links, security headers;
* :mod:`.session` -- FastAPI dependencies: the logged-in viewer, CSRF-checked actions;
* :mod:`.blur` -- blurred, grayscale previews rendered in memory;
* :mod:`.keyframes` -- videos as strips of key frames;
* :mod:`.views` -- Jinja2 templates (``templates/console``), static files, error pages;
* :mod:`.reports` -- report drafts with their XSD validation result;
* :mod:`.demo` -- the reviewer account and case of ``sentinelle serve --demo``.
"""
