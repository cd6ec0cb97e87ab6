"""License-server simulator: a JSON state and fake tools printing the real formats from it."""
