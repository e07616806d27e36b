"""Development tools of the HRSS warehouse: the calibrated sample-return generator, the benchmark
and the division registry build. Installed by the [dev] extra, never in the production image."""
