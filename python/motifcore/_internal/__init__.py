"""Private helpers shared by every subpackage: validation, atomic I/O, motif specs."""
