"""Scripts run from the Makefile; importable so their decisions can be tested."""
