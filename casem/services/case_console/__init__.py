"""case-console: the web console people use to triage and work cases, served by casem itself.

Why its own service (`casem run case-console`, port 8081) rather than pages at `/` of case-api:

* Different credentials, different risks. case-api authenticates every request by its DD-API-KEY and
  DD-APPLICATION-KEY headers, which a browser never sends by itself, so the API has no CSRF surface. The
  console authenticates by a session cookie, which browsers do send by themselves. Serving both from one
  origin would put ambient cookie credentials next to the API; apart, the API keeps accepting headers only
  and everything cookie-shaped (sessions, CSRF tokens, OIDC redirects, a strict CSP) lives here.
* Different load. The console holds long-lived server-sent-event streams and a bus consumer per replica
  (live updates come from the domain events on the bus, so any replica sees any other's changes), and
  serves pages and static files; case-api serves short API calls. Each scales on its own.
* The same application layer. Like every service here it is a thin transport over `casem.app` (the
  import-linter independence contract keeps it from reaching into case-api), so a page and the API change a
  case through the same use case, in the same transaction, with the same outbox event and the same org
  scoping (another org's case id or key is the same 404 page as a case that does not exist).

`casem up` starts it beside case-api in the same process and prints its URL and how the first admin signs
in. The stack: server-rendered Jinja templates and htmx, with a little JavaScript for what htmx does not do
(drag and drop with SortableJS, upload progress, keyboard shortcuts, charts with uPlot), every asset served
from `static/` (vendor files are built from `frontend/package-lock.json` by scripts/tools/build-console.sh).
"""
