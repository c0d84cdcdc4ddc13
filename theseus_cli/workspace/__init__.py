"""The workspace: theseus.yaml, init and status, the pipeline that runs a stage with
its upstream stages and publishes, the checks before any work, several tasks and seeds."""
