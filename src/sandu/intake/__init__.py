"""Intake: reading the data sources an enterprise consented to, through adapters.

One interface (`SourceAdapter.read` → `ReadOutcome`), three adapters (the simulated
universe, a drop folder of batch files, an HTTP service with retries and a circuit
breaker), and `read_all`, which reads them concurrently within per-source and overall
deadlines. A service, not an engine: it does I/O, and the pure profile builder
(`sandu.sources.profile`) takes what it read.
"""

from sandu.intake.config import IntakeConfigError, adapter_kinds, adapters_from_settings, deadlines_s
from sandu.intake.files import LAYOUTS, DropFileError, FileAdapter, Rejection, rows_from_payload, write_source_file
from sandu.intake.http import CircuitBreaker, HttpAdapter
from sandu.intake.outcome import OUTCOMES, ReadOutcome, SourceAdapter, gaps, payloads_for_profile
from sandu.intake.reader import read_all
from sandu.intake.simulated import SimulatedAdapter

__all__ = [
    "OUTCOMES", "LAYOUTS", "CircuitBreaker", "DropFileError", "FileAdapter", "HttpAdapter", "IntakeConfigError", "ReadOutcome",
    "Rejection", "SimulatedAdapter", "SourceAdapter", "adapter_kinds", "adapters_from_settings", "deadlines_s", "gaps",
    "payloads_for_profile", "read_all", "rows_from_payload", "write_source_file",
]
