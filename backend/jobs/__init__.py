"""Where background work runs: in-process schedulers or Redis Queue workers, locks and retries."""
