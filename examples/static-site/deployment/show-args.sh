#!/bin/sh
# Prints each argument between brackets, NUL-terminated, so that a caller can check that every
# argument arrived exactly as it was given.
for arg in "$@"; do printf '[%s]\0' "$arg"; done
