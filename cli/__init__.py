"""`lm-cli`: the HPC admins' command-line client of the License Manager REST API."""
