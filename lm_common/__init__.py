"""What the backend, the agent, lm-cli, devstack, the benchmarks and the tests all rely on.

Standard library only, and nothing imported here at package level: the agent's Slurm hooks import
these modules on every job start, and neither side may pull the other in through them.
"""
