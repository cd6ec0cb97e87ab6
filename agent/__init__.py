"""The agent: polls license servers, books licenses for jobs, sizes the Slurm reservation."""
