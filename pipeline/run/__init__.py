"""Running a plan: the session that wires a loaded config into a ready executor (builders, registry
client, signer, trust gate, locks), the executor itself and the run's report."""
