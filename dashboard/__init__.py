"""The command wall's core. No web framework here.

The foundation lies directly in this folder: settings (`config`), the domain's vocabulary
(`models`), map datums (`geo`), the city's hierarchy (`city`), the feed protocol (`protocol`),
the live state in Redis (`store`), the scope rule (`scope`), the UI strings (`i18n`) and the
reconnect backoff (`backoff`). Each capability has its own sub-package:

- `command/`: the command loop: plans, proposals, dispatch, tasks, time limits, alerts;
- `duty/`: the duty desk, the roster and the shift handover;
- `archive/`: closed events, the cockpit's figures, units' tracks;
- `video/`: camera coverage and the video wall;
- `access/`: accounts and sessions, the audit trail, the server's own secrets;
- `ops/`: readiness and health, memory capacity, repairs.
"""

from __future__ import annotations

__version__ = "0.1.0"
