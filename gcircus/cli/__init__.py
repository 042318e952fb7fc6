"""Command-line tools: gcircusd, gcircusctl, gcircus-top. Argument parsing and
output only; the logic lives in the library."""
